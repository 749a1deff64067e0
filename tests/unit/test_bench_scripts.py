"""The benchmark scripts still run (briefly): a benchmark nobody can run measures nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


@pytest.mark.parametrize(
    "command",
    [
        ["bench/run_loop.py", "20"],
        ["bench/llm_overhead.py", "--turns", "2", "--blocks", "1"],
        ["bench/observability.py", "--turns", "2", "--blocks", "1"],
        ["bench/rate_limits.py", "--rounds", "5", "--backends", "memory"],
        # It starts `assistant-service serve` as a process: a server test (see tests/conftest.py).
        pytest.param(
            ["bench/load.py", "--seconds", "0.2", "--sockets", "5"], marks=pytest.mark.servers
        ),
        # It starts an upstream and the service on three backends as processes: a server test.
        pytest.param(
            ["bench/relay.py", "--seconds", "0.2", "--rounds", "1", "--levels", "1,2"],
            marks=pytest.mark.servers,
        ),
        pytest.param(
            ["bench/relay.py", "--crowd", "20", "--crowd-turns", "1", "--litellm", "/nowhere"],
            marks=pytest.mark.servers,
        ),
    ],
    ids=[
        "run_loop",
        "llm_overhead",
        "observability",
        "rate_limits",
        "load",
        "relay",
        "relay_crowd",
    ],
)
def test_a_benchmark_runs_and_prints_figures(command):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT / "tests")])}
    done = subprocess.run(
        [sys.executable, *command],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=240,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert any(char.isdigit() for char in done.stdout)
