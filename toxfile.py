"""tox's inline plugin: find the pyenv-installed Pythons with no PATH set-up.

tox (through virtualenv) looks for ``python3.10`` ... ``python3.13`` on ``PATH``;
pyenv's shims there only run the one active version, so ``tox run`` on a fresh
machine with pyenv would skip every other Python. This hook hands tox the
interpreters of ``$PYENV_ROOT/versions`` (default ``~/.pyenv/versions``) as if
they were passed with ``--discover``: tox tries them first for each env's
``base_python`` and still falls back to ``PATH``. A ``--discover`` given on the
command line wins.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from tox.plugin import impl

if TYPE_CHECKING:
    from tox.config.sets import ConfigSet
    from tox.session.state import State

# CPython releases only ("3.12.1"): pyenv also keeps virtualenvs, dev builds and
# other implementations under versions/, which no env here asks for.
_RELEASE = re.compile(r"(\d+)\.(\d+)\.(\d+)")
# pyproject.toml's requires-python: older interpreters would only cost a probe each.
_OLDEST = (3, 10)


def pyenv_pythons(root: Path | None = None) -> list[str]:
    """The ``python3`` of each pyenv CPython release from 3.10 on, newest first."""
    if root is None:
        root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    found: list[tuple[tuple[int, ...], str]] = []
    versions = root / "versions"
    if not versions.is_dir():
        return []
    for entry in versions.iterdir():
        match = _RELEASE.fullmatch(entry.name)
        python = entry / "bin" / "python3"
        if match and python.is_file() and os.access(python, os.X_OK):
            version = tuple(int(part) for part in match.groups())
            if version[:2] >= _OLDEST:
                found.append((version, str(python)))
    return [python for _version, python in sorted(found, reverse=True)]


@impl
def tox_add_core_config(core_conf: ConfigSet, state: State) -> None:  # noqa: ARG001 - the hook's signature
    options = state.conf.options
    if not getattr(options, "discover", None):
        options.discover = pyenv_pythons()
