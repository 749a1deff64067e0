"""The state-store benchmark still runs (briefly), as test_bench_scripts.py checks the others.

A file of its own so that the shared benchmark test stays untouched on this
branch; it can join that test's list.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# The benchmark starts redis-server and the Firestore emulator: a server test (see tests/conftest.py).
pytestmark = pytest.mark.servers

ROOT = Path(__file__).parents[2]


def test_the_state_store_benchmark_runs_and_prints_figures_for_every_backend():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT / "tests")])}
    env.pop("REDIS_URL", None)
    env.pop("FIRESTORE_EMULATOR_HOST", None)
    done = subprocess.run(
        [sys.executable, "bench/state_store.py", "--rounds", "3"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=240,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "lock acquire + release" in done.stdout
    expected = ["memory"]
    expected += ["redis"] if shutil.which("redis-server") or os.environ.get("CI") else []
    expected += ["firestore"] if shutil.which("gcloud") or os.environ.get("CI") else []
    for backend in expected:
        assert f"{backend} (" in done.stdout, done.stdout
