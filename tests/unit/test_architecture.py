"""The hexagon's dependency rule and the package's public surface."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import assistant_service

PACKAGE = Path(assistant_service.__file__).parent
FORBIDDEN_IN_CORE = {
    "openai",
    "quart",
    "hypercorn",
    "google",
    "httpx",
    "httpx2",
    "structlog",
    "cattrs",
}


def imported_top_level_names(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("layer", ["domain", "ports"])
def test_domain_and_ports_import_no_vendor_package(layer):
    files = sorted((PACKAGE / layer).rglob("*.py"))
    assert files, f"no modules found under {layer}/"
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(imported_top_level_names(path) & FORBIDDEN_IN_CORE)
        for path in files
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_the_ports_import_nothing_but_the_domain_and_stdlib():
    for path in sorted((PACKAGE / "ports").rglob("*.py")):
        own = {
            node.module
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.ImportFrom)
            and node.module
            and node.module.startswith("assistant_service")
        }
        assert all(
            module.startswith(("assistant_service.domain", "assistant_service.ports"))
            for module in own
        ), (path, own)


def test_the_core_imports_without_any_extra():
    # Make the extras unimportable in a fresh interpreter, then use the embedding API.
    blocked = ["openai", "quart", "hypercorn", "google", "httpx", "httpx2"]
    script = (
        "import sys\n"
        f"for name in {blocked!r}: sys.modules[name] = None\n"
        "import anyio, assistant_service\n"
        "from assistant_service import testing\n"
        "async def main():\n"
        "    service = assistant_service.bootstrap()\n"
        "    conversation = await service.start_conversation()\n"
        "    result = await service.chat(conversation, 'use get_forecast city=Oslo')\n"
        "    print(result.tool_outcomes[0].status.value)\n"
        "anyio.run(main)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_all_is_sorted_and_complete():
    public = {name for name in dir(assistant_service) if not name.startswith("_")}
    exported = set(assistant_service.__all__)
    assert assistant_service.__all__ == sorted(assistant_service.__all__)
    modules = {"adapters", "domain", "entrypoints", "ports", "testing"}
    assert public - modules == exported


def test_the_package_is_typed():
    assert (PACKAGE / "py.typed").is_file()
