"""The README's embedding and testing examples run as written, on the core install."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

import assistant_service

README = Path(__file__).parents[2] / "README.md"


def readme_block(name: str) -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(rf"<!-- {name}:[^>]*-->\n```python\n(.*?)```", text, re.DOTALL)
    assert match, f"README.md lost its {name} block"
    return match.group(1)


def embedding_example() -> str:
    return readme_block("embedding-example")


def test_the_embedding_example_is_about_ten_lines():
    code = [line for line in embedding_example().splitlines() if line.strip()]
    docstring = [line for line in code if line.startswith("        ") or '"""' in line]
    assert len(code) - len(docstring) <= 14


def test_the_embedding_example_runs_and_calls_the_tool(tmp_path):
    script = tmp_path / "example.py"
    script.write_text(embedding_example(), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "run.started "
    assert "tool_call.started " in lines
    assert "tool_call.completed " in lines
    deltas = "".join(
        line.removeprefix("message.delta ") for line in lines if line.startswith("message.delta")
    )
    assert "Sunny in Paris for 2 day(s)." in deltas
    assert lines[-1] == "run.completed "


PLUGIN = "assistant_service.testing"


def installed_with_the_plugin() -> bool:
    return bool(metadata.entry_points(group="pytest11", name=PLUGIN))


def test_the_package_declares_its_pytest_plugin():
    pyproject = (README.parent / "pyproject.toml").read_text(encoding="utf-8")
    assert f'[project.entry-points.pytest11]\n"{PLUGIN}" = "{PLUGIN}"\n' in pyproject


# In a user's project pytest loads the fixtures through the package's pytest11 entry
# point (tox installs the package so); on PYTHONPATH alone `-p` stands in for it.
ENTRY_POINT = () if installed_with_the_plugin() else ("-p", PLUGIN)


@pytest.mark.parametrize(
    ("conftest_head", "options"),
    [
        pytest.param("", ENTRY_POINT, id="entry-point"),
        pytest.param('pytest_plugins = ["assistant_service.testing"]\n', (), id="pytest_plugins"),
    ],
)
def test_the_testing_example_passes_in_a_fresh_project(tmp_path, conftest_head, options):
    project = tmp_path / "project"
    project.mkdir()
    (project / "conftest.py").write_text(
        readme_block("testing-conftest") + conftest_head, encoding="utf-8"
    )
    (project / "test_forecast.py").write_text(readme_block("testing-example"), encoding="utf-8")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTEST_", "COV_", "COVERAGE_"))
    }
    # The package as this test process imports it, wherever that is.
    env["PYTHONPATH"] = os.pathsep.join(
        filter(
            None, (str(Path(assistant_service.__file__).parents[1]), os.environ.get("PYTHONPATH"))
        )
    )
    done = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-W", "error"),
            *options,
            *("--rootdir", str(project), "-o", "addopts=", "-q", str(project)),
        ],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout
    assert "warning" not in done.stdout.lower(), done.stdout


def shell_lines() -> list[str]:
    text = README.read_text(encoding="utf-8")
    blocks = re.findall(r"```sh\n(.*?)```", text, re.DOTALL)
    return [line for block in blocks for line in block.splitlines()]


def test_every_install_command_works_before_the_package_is_published():
    installs = [line for line in shell_lines() if "pip install" in line]
    assert installs
    for line in installs:
        command = line.split("#", 1)[0]
        assert " -e " in command or "git+" in command or "pip install tox" in command, line


def test_serve_says_where_it_listens():
    from assistant_service.entrypoints.settings import Settings  # noqa: PLC0415

    serves = [line for line in shell_lines() if line.startswith("assistant-service serve ")]
    default = Settings()
    assert f"{default.host}:{default.port}" in serves[0]
    assert "127.0.0.1:8000" not in README.read_text(encoding="utf-8")
