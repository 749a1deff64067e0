"""The secret value type: holds a value and never shows it."""

from __future__ import annotations

import attrs


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
