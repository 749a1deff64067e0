"""The server's event loop: EVENT_LOOP and --loop, uvloop when installed."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

import assistant_service
from assistant_service.entrypoints.cli import main as cli
from assistant_service.entrypoints.event_loop import resolve_loop, run_loop
from assistant_service.entrypoints.settings import EventLoop, SettingsError, load_settings

SOURCE = str(Path(assistant_service.__file__).parent.parent)


def test_the_setting_defaults_to_auto_and_takes_any_case():
    assert load_settings({}).event_loop is EventLoop.AUTO
    assert load_settings({"EVENT_LOOP": "AsyncIO"}).event_loop is EventLoop.ASYNCIO
    with pytest.raises(SettingsError, match=r"EVENT_LOOP: expected one of auto\|asyncio\|uvloop"):
        load_settings({"EVENT_LOOP": "trio"})


def test_serve_takes_a_loop_and_refuses_an_unknown_one():
    assert cli.build_parser().parse_args(["serve", "--loop", "asyncio"]).loop == "asyncio"
    assert cli.build_parser().parse_args(["serve"]).loop is None
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["serve", "--loop", "trio"])


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_asyncio_is_the_standard_loop():
    assert resolve_loop(EventLoop.ASYNCIO) is EventLoop.ASYNCIO
    assert run_loop(_loop_module(), EventLoop.ASYNCIO).startswith("asyncio")


def test_auto_and_uvloop_run_on_uvloop_when_it_is_installed():
    pytest.importorskip("uvloop")
    assert resolve_loop(EventLoop.AUTO) is EventLoop.UVLOOP
    assert run_loop(_loop_module(), resolve_loop(EventLoop.UVLOOP)).startswith("uvloop")


def _without_uvloop(code: str) -> subprocess.CompletedProcess[str]:
    # A process where uvloop cannot be imported (None in sys.modules makes it so).
    return subprocess.run(
        [sys.executable, "-c", "import sys; sys.modules['uvloop'] = None\n" + code],
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": SOURCE},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_without_uvloop_auto_is_asyncio_and_asking_for_it_names_the_install():
    done = _without_uvloop(
        "from assistant_service.entrypoints.event_loop import resolve_loop\n"
        "from assistant_service.entrypoints.settings import EventLoop\n"
        "print(resolve_loop(EventLoop.AUTO).value)\n"
        "resolve_loop(EventLoop.UVLOOP)\n"
    )
    assert done.stdout.strip() == "asyncio"
    assert "ConfigurationError" in done.stderr
    assert "pip install 'assistant-service[speed]'" in done.stderr


def test_serve_with_uvloop_missing_fails_with_one_line():
    done = _without_uvloop(
        "from assistant_service.entrypoints.cli.main import main\n"
        "sys.exit(main(['serve', '--loop', 'uvloop', '--port', '0']))\n"
    )
    assert done.returncode == 2
    assert done.stderr.startswith("assistant-service: the uvloop event loop is not installed")
    assert "Traceback" not in done.stderr
