"""The secret value type, which never shows its value, and the mask for key-shaped text."""

from __future__ import annotations

import re

import attrs

# OpenAI keys (sk-..., sk-proj-...) and bearer tokens inside free text: upstream
# messages and log lines may echo them. The one definition every layer masks with.
KEY_SHAPED = re.compile(r"(sk-[A-Za-z0-9_\-]{4})[A-Za-z0-9_\-*]*|(Bearer\s+)\S+", re.IGNORECASE)


def mask_key_shaped(text: str) -> str:
    """``text`` with anything shaped like an API key or bearer token cut to ``sk-abcd***``."""
    return KEY_SHAPED.sub(lambda m: (m.group(1) or m.group(2)) + "***", text)


@attrs.frozen(repr=False)
class Secret:
    """A named secret. ``repr``, ``str`` and logs see ``Secret('name', '***')``.

    Read the value only where it is used, with :meth:`reveal`.
    """

    name: str
    _value: str = attrs.field(alias="value", eq=False, hash=False)

    def reveal(self) -> str:
        """Return the secret value; never log or echo it."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({self.name!r}, '***')"

    __str__ = __repr__

    def __getstate__(self) -> dict[str, str]:
        # Pickling is copying: refuse to let the value leave this way.
        raise TypeError("a Secret cannot be pickled")
