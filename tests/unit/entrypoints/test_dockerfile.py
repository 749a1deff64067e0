"""The Dockerfile, read statically (Docker does not run here): the shape a deployment relies on."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def instructions(name: str) -> list[str]:
    joined = DOCKERFILE.replace("\\\n", " ")
    return [line.split(None, 1)[1] for line in joined.splitlines() if line.startswith(name + " ")]


def test_it_builds_in_one_stage_and_runs_in_another_as_a_non_root_user():
    stages = instructions("FROM")
    assert len(stages) == 2
    assert stages[0].endswith("AS build")
    assert stages[1].endswith("AS runtime")
    [user] = instructions("USER")
    assert not user.startswith(("root", "0"))
    assert 'pip install ".[all]"' in DOCKERFILE
    assert "COPY --from=build /opt/venv /opt/venv" in DOCKERFILE


def test_it_serves_on_8000_with_the_cli_and_checks_healthz():
    assert instructions("EXPOSE") == ["8000"]
    [command] = instructions("CMD")
    assert json.loads(command) == ["assistant-service", "serve"]  # exec form: PID 1 gets SIGTERM
    [healthcheck] = instructions("HEALTHCHECK")
    assert "/healthz" in healthcheck
    assert "urllib.request" in healthcheck


def test_the_build_context_holds_what_the_copies_need():
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    for copy in instructions("COPY"):
        if copy.startswith("--from"):
            continue
        *sources, _target = copy.split()
        for source in sources:
            assert source.rstrip("/") in allowed, source
            assert (ROOT / source).exists(), source
    assert re.search(r"^\*\*$", "\n".join(ignore), re.MULTILINE)  # everything else stays out
