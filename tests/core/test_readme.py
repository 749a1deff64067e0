"""The README's embedding example runs as written, on the core install."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).parents[2] / "README.md"


def embedding_example() -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(r"<!-- embedding-example:[^>]*-->\n```python\n(.*?)```", text, re.DOTALL)
    assert match, "README.md lost its embedding example"
    return match.group(1)


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
