"""The quick-start example runs on the core install and shows the whole loop."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).parents[2] / "examples" / "quickstart.py"


def test_the_quickstart_answers_then_calls_a_tool():
    done = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "offline model" in done.stdout
    assert "[calling demo.get_forecast" in done.stdout
    assert "[ok in" in done.stdout
    assert "1 tool round(s)" in done.stdout
