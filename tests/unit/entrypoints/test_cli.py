"""The CLI: subcommands from modules, one-line configuration errors."""

from __future__ import annotations

import json
import os
import socket
import sys
import time

import pytest

from assistant_service.domain.errors import ConfigurationError
from assistant_service.entrypoints.bootstrap import demo_tools
from assistant_service.entrypoints.cli import main as cli
from assistant_service.entrypoints.settings import Settings, StateStoreKind


def test_serve_is_a_subcommand_with_host_port_and_workers():
    args = cli.build_parser().parse_args(["serve", "--port", "0", "--workers", "2"])
    assert (args.host, args.port, args.workers) == (None, 0, 2)
    assert callable(args.handler)


def test_no_command_prints_help_and_fails(capsys):
    assert cli.main([]) == 2
    assert "serve" in capsys.readouterr().err


def test_bad_settings_fail_with_one_line_and_no_traceback(capsys, monkeypatch):
    # The environment is the CLI's input: setting it is how a user calls it.
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("MAX_BODY_BYTES", "lots")
    assert cli.main(["serve"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("assistant-service: invalid settings:")
    assert "MAX_BODY_BYTES" in err
    assert "PROJECT_ID" in err
    assert "Traceback" not in err


def test_every_command_module_has_add_commands():
    assert cli.COMMAND_MODULES
    for module in cli.COMMAND_MODULES:
        assert callable(module.add_commands)


@pytest.mark.parametrize("argv", [["serve", "--port", "x"], ["nope"]])
def test_argument_errors_exit_with_2(argv):
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code == 2


def test_serve_without_the_server_extra_names_the_install(capsys, monkeypatch):
    # A core install: importing Hypercorn fails (None in sys.modules makes it so, for
    # its submodules too: an imported one would be found without its package).
    monkeypatch.delitem(sys.modules, "assistant_service.entrypoints.server", raising=False)
    for name in [n for n in sys.modules if n.startswith("hypercorn.")] + ["hypercorn"]:
        monkeypatch.setitem(sys.modules, name, None)
    assert cli.main(["serve"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("assistant-service: serve needs the server extra")
    assert "pip install 'assistant-service[server]'" in err
    assert "Traceback" not in err


def test_a_busy_port_is_a_configuration_error_naming_it():
    from assistant_service.entrypoints.server import run_server  # noqa: PLC0415

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ConfigurationError, match=rf"127\.0\.0\.1:{port}: the port is in use"):
            run_server(Settings(), host="127.0.0.1", port=port)


def test_reload_runs_one_worker():
    from assistant_service.entrypoints.server import run_server  # noqa: PLC0415

    with pytest.raises(ConfigurationError, match="--reload runs one worker"):
        run_server(
            Settings(state_store=StateStoreKind.REDIS),
            host="127.0.0.1",
            port=0,
            workers=2,
            reload=[],
        )


def test_the_reload_watcher_sees_changed_new_and_removed_files(tmp_path):
    from assistant_service.entrypoints.server import _Watcher  # noqa: PLC0415

    tools = tmp_path / "weather" / "tools.py"
    tools.parent.mkdir()
    tools.write_text("x = 1\n")
    cache = tmp_path / "weather" / "__pycache__" / "tools.pyc"
    cache.parent.mkdir()
    watcher = _Watcher([tmp_path])
    assert not watcher.changed()
    cache.write_text("compiled")  # Python's own writes are not changes
    assert not watcher.changed()
    os.utime(tools, (time.time() + 5, time.time() + 5))
    assert watcher.changed()
    assert not watcher.changed()
    (tmp_path / "weather" / "profile.json").write_text("{}")
    assert watcher.changed()
    tools.unlink()
    assert watcher.changed()


def test_tools_show_knows_the_demo_assistant(capsys, tmp_path):
    assert cli.main(["tools", "show", "demo", "--assistants-dir", str(tmp_path)]) == 0
    tools = json.loads(capsys.readouterr().out)
    assert {tool["name"] for tool in tools} == {
        name.replace(".", "__") for name in demo_tools().names()
    }


def test_a_demo_spec_directory_wins_over_the_built_in_demo(capsys, tmp_path):
    assert cli.main(["tools", "show", "demo", "--assistants-dir", str(tmp_path / "none")]) == 0
    capsys.readouterr()
    (tmp_path / "demo").mkdir()
    assert cli.main(["tools", "show", "demo", "--assistants-dir", str(tmp_path)]) == 2
    assert "demo" in capsys.readouterr().err


def test_an_empty_list_says_it_is_empty(capsys, tmp_path):
    assert cli.main(["assistants", "list", "--from", f"local:{tmp_path}"]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"no assistant profiles in local:{tmp_path}\n"
