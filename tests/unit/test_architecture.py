"""The hexagon's dependency rule and the package's public surface."""

from __future__ import annotations

import ast
import graphlib
import subprocess
import sys
from pathlib import Path

import pytest

import assistant_service

PACKAGE = Path(assistant_service.__file__).parent
# Nothing below the adapters may import these (DESIGN.md, the dependency rule).
FORBIDDEN_IN_CORE = {
    "openai",
    "quart",
    "hypercorn",
    "google",
    "httpx",
    "httpx2",
    "redis",
    "structlog",
    "cattrs",
    "prometheus_client",
    "opentelemetry",
}
CORE_LAYERS = ("domain", "ports", "application")
# What each layer may import of the package (entrypoints, testing and the root may import anything).
ALLOWED = {
    "domain": {"domain"},
    "ports": {"domain", "ports"},
    "application": {"domain", "ports", "application"},
    "adapters": {"domain", "ports", "adapters"},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imports_of(path: Path, *, type_checking: bool = True) -> set[str]:
    """Absolute names of what ``path`` imports: module level, in functions and, if asked, under TYPE_CHECKING."""
    tree = ast.parse(path.read_text(), str(path))
    skipped = set()
    if not type_checking:
        for node in ast.walk(tree):
            if _is_type_checking_block(node):
                skipped.update(id(child) for child in ast.walk(node))
    package = (
        module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    )
    names = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:
                # ``from package import module`` imports the module.
                candidate = f"{base}.{alias.name}"
                names.add(candidate if candidate in MODULES else base)
    return names


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in {*CORE_LAYERS, "adapters"} else None


def imported_top_level_names(path: Path) -> set[str]:
    return {name.split(".")[0] for name in imports_of(path)}


@pytest.mark.parametrize("layer", CORE_LAYERS)
def test_the_core_layers_import_no_vendor_package(layer):
    files = sorted((PACKAGE / layer).rglob("*.py"))
    assert files, f"no modules found under {layer}/"
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(imported_top_level_names(path) & FORBIDDEN_IN_CORE)
        for path in files
    }
    assert {path: names for path, names in offenders.items() if names} == {}


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_each_layer_imports_only_the_layers_beneath_it(layer):
    # domain <- ports <- application; adapters import domain and ports; even under TYPE_CHECKING.
    files = sorted((PACKAGE / layer).rglob("*.py"))
    assert files, f"no modules found under {layer}/"
    offenders = {}
    for path in files:
        own = {name for name in imports_of(path) if name.startswith("assistant_service")}
        wrong = sorted(name for name in own if layer_of(name) not in ALLOWED[layer])
        if wrong:
            offenders[str(path.relative_to(PACKAGE))] = wrong
    assert offenders == {}


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """A cycle of ``graph`` (as graphlib reports it), or [] when there is none."""
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as error:
        return list(error.args[1])
    return []


def test_the_cycle_finder_finds_a_cycle():
    assert set(_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}})) == {"a", "b", "c"}
    assert _cycle({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_between_the_package_modules():
    # Runtime imports only (module level and in functions): TYPE_CHECKING imports never run.
    graph = {
        name: {i for i in imports_of(path, type_checking=False) if i in MODULES and i != name}
        for name, path in MODULES.items()
    }
    assert _cycle(graph) == []


def test_no_module_imports_the_package_through_importlib():
    # Lazy imports are plain function-local imports, which mypy and this test can see.
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in MODULES.values()
        if 'import_module("assistant_service' in path.read_text()
    ]
    assert offenders == []


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
    # "@py_builtins" and "@pytest_ar" are pytest's: the package is a pytest plugin
    # (assistant_service.testing), so pytest rewrites its modules when installed.
    public = {name for name in dir(assistant_service) if not name.startswith(("_", "@"))}
    exported = set(assistant_service.__all__)
    assert assistant_service.__all__ == sorted(assistant_service.__all__)
    modules = {"adapters", "application", "domain", "entrypoints", "ports", "testing"}
    assert public - modules == exported


def test_the_package_is_typed():
    assert (PACKAGE / "py.typed").is_file()
