"""The state-store benchmark still runs (briefly), as test_bench_scripts.py checks the others.

A file of its own so that the shared benchmark test stays untouched on this
branch; it can join that test's list.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# The benchmark starts redis-server and the Firestore emulator: a server test (see tests/conftest.py).
pytestmark = pytest.mark.servers

ROOT = Path(__file__).parents[2]

NUMBER = r"(\d+(?:\.\d+)?)"
# In each backend's section: "  turn with the lock:  144.7 µs median,  150.2 µs mean over 3 turns".
TURN_LINE = re.compile(
    rf"turn with the lock: +{NUMBER} µs median, +{NUMBER} µs mean over (\d+) turns"
)
# In the table at the end: "  redis   1073.9 µs  (overhead  +929.1 µs, x7.4)" or "(baseline)".
TABLE_ROW = re.compile(
    rf"^  (\w+) +{NUMBER} µs  \((baseline|overhead +([+-]{NUMBER}) µs, x{NUMBER})\)$"
)


def sections(stdout: str) -> dict[str, list[str]]:
    """Each backend's lines, by the backend's name ("redis (3 rounds):" opens one)."""
    found: dict[str, list[str]] = {}
    current: list[str] = []
    for line in stdout.splitlines():
        opening = re.match(r"^(\w+) \(\d+ rounds\):$", line)
        if opening:
            current = found.setdefault(opening[1], [])
        elif line.startswith("turn with the lock ("):
            current = found.setdefault("table", [])
        else:
            current.append(line)
    return found


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

    # A turn with the lock: every store's section times its turns (3 rounds: 3 turns)...
    found = sections(done.stdout)
    for backend in expected:
        turns = [m for line in found.get(backend, []) if (m := TURN_LINE.search(line))]
        assert len(turns) == 1, done.stdout
        median, mean, count = turns[0].groups()
        assert float(median) > 0, done.stdout
        assert float(mean) > 0, done.stdout
        assert int(count) == 3, done.stdout
    # ... and the table at the end gives every store's median and its overhead over memory's.
    rows = {m[1]: m for line in found.get("table", []) if (m := TABLE_ROW.match(line))}
    assert sorted(rows) == sorted(expected), done.stdout
    assert rows["memory"][3] == "baseline", done.stdout
    for backend in expected:
        median = float(rows[backend][2])
        assert median > 0, done.stdout
        if backend != "memory":
            overhead = float(rows[backend][4])
            # Sanity, not timing: the overhead is this median less memory's, as printed.
            assert abs(overhead - (median - float(rows["memory"][2]))) < 0.2, done.stdout
            assert float(rows[backend][6]) > 0, done.stdout
