"""README's test command: tox finds the pyenv Pythons by itself, and CI runs that same command."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
PYTHONS = ("py310", "py311", "py312", "py313")


def readme_test_command() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("Run the tests", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block is not None
    lines = [line for line in block.group(1).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


def test_ci_runs_the_readme_test_command():
    command = readme_test_command()
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert command in ci_lines
    # The run's verdict is tox's: nothing after it may turn a failure into a pass.
    assert ci_lines[-1] == command


@pytest.fixture
def tox_module():
    try:
        import tox  # noqa: PLC0415, F401
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip("tox is not installed here (the tests dependency group has it)")
    sys.path.insert(0, str(ROOT))
    try:
        import toxfile  # noqa: PLC0415

        yield toxfile
    finally:
        sys.path.remove(str(ROOT))
        sys.modules.pop("toxfile", None)


def test_pyenv_releases_from_310_newest_first(tox_module, tmp_path):
    for name in (
        "3.9.18",
        "3.12.1",
        "3.10.13",
        "3.12.4",
        "3.13-dev",
        "3.12.1/envs/x",
        "pypy3.10-7.3",
    ):
        bin_dir = tmp_path / "versions" / name / "bin"
        bin_dir.mkdir(parents=True, exist_ok=True)
        (bin_dir / "python3").write_text("#!/bin/sh\n")
        (bin_dir / "python3").chmod(0o755)
    (tmp_path / "versions" / "3.11.7").mkdir()  # uninstalled: no bin/python3

    found = tox_module.pyenv_pythons(tmp_path)

    versions = [Path(python).parents[1].name for python in found]
    assert versions == ["3.12.4", "3.12.1", "3.10.13"]


def test_no_pyenv_no_pythons(tox_module, tmp_path):
    assert tox_module.pyenv_pythons(tmp_path / "missing") == []


def test_tox_finds_every_python_without_pyenv_on_path(tox_module):
    installed = {Path(p).parents[1].name.rpartition(".")[0] for p in tox_module.pyenv_pythons()}
    missing = {"3.10", "3.11", "3.12", "3.13"} - installed
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"pyenv has no CPython {', '.join(sorted(missing))}")
        pytest.skip(f"pyenv has no CPython {', '.join(sorted(missing))}")
    # A fresh shell: pyenv's shims (or nothing) on PATH, no version's bin folder,
    # not the bin folder of the env running these tests either.
    own_bin = str(Path(sys.executable).parent)
    path = [
        entry
        for entry in os.environ.get("PATH", "").split(os.pathsep)
        if "/.pyenv/versions/" not in entry + "/" and entry != own_bin
    ]
    env = {**os.environ, "PATH": os.pathsep.join(path)}
    result = subprocess.run(
        [sys.executable, "-m", "tox", "config", "-e", ",".join(PYTHONS), "-k", "py_dot_ver"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    found = dict(re.findall(r"\[testenv:(py3\d+)\]\npy_dot_ver = (.*)", result.stdout))
    assert found == {"py310": "3.10", "py311": "3.11", "py312": "3.12", "py313": "3.13"}, (
        result.stdout
    )
