"""The secret value type, which never shows its value, and the masks for text that may echo one.

Two nets, applied together by :func:`mask_secrets`:

- by value: every value a :class:`Secret` was made with (and what
  :func:`hold_secret` is given, a password inside a URL say) is held, process-wide,
  in :data:`HELD_SECRETS`, and replaced wherever it appears: whole, URL- or
  JSON-encoded, as a run of 12 or more of its characters, or as a partial echo
  that keeps its first or last characters around a mask (OpenAI's 401 prints
  ``sk-ab***...xyz``);
- by shape: anything shaped like an OpenAI key or a bearer token, held or not.
"""

from __future__ import annotations

import json
import re
import threading
from urllib.parse import quote, quote_plus

import attrs

# OpenAI keys (sk-..., sk-proj-...) and bearer tokens inside free text: upstream
# messages and log lines may echo them. The one definition every layer masks with.
KEY_SHAPED = re.compile(r"(sk-[A-Za-z0-9_\-]{4})[A-Za-z0-9_\-*]*|(Bearer\s+)\S+", re.IGNORECASE)

MASKED = "[REDACTED]"
# Shorter values would mask ordinary words (and hide nothing worth hiding).
MIN_HELD_LENGTH = 8
# A run of this many characters of a held value is an echo of it.
FRAGMENT_LENGTH = 12
# Echoes keep this many of a value's first (or last) characters around a mask.
_MIN_HEAD = 4
_MIN_TAIL = 3
# What ends a token around a mask run: whitespace, quotes, brackets, separators.
_TOKEN_ENDS = frozenset("\"'<>()[]{},;")
_MASK_RUN = re.compile(r"\*{2,}|\.{3,}|\u2026|\u2022+")
_LONG_RUN = re.compile(rf"\S{{{FRAGMENT_LENGTH},}}")
# A window of FRAGMENT_LENGTH characters always holds one block of this length that
# starts at a multiple of it: a run with no such block of a held value holds no fragment.
_BLOCK = FRAGMENT_LENGTH // 2
# Masked texts are remembered (ids, event types and names repeat on every event
# and log line) while no value is added: at most this many, each this long at most.
_KNOWN_TEXTS = 2048
_KNOWN_LENGTH = 256


def mask_key_shaped(text: str) -> str:
    """``text`` with anything shaped like an API key or bearer token cut to ``sk-abcd***``."""
    # casefold() maps every character KEY_SHAPED's IGNORECASE matches (the long s,
    # the Kelvin sign) onto these: text without them cannot match.
    folded = text.casefold()
    if "sk-" not in folded and "bearer" not in folded:
        return text
    return KEY_SHAPED.sub(lambda m: (m.group(1) or m.group(2)) + "***", text)


def _spellings(value: str) -> set[str]:
    """The ways ``value`` is written in URLs, forms and JSON text."""
    return {
        value,
        quote(value, safe=""),
        quote_plus(value, safe=""),
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
    }


@attrs.frozen
class _Snapshot:
    spellings: tuple[str, ...] = ()
    whole: re.Pattern[str] | None = None
    fragments: frozenset[str] = frozenset()
    # The _BLOCK-long pieces of the fragments: the quick test for a run.
    blocks: frozenset[str] = frozenset()
    # Text -> masked text under these values (a new snapshot starts empty).
    known: dict[str, str] = attrs.field(factory=dict, eq=False)


class SecretValues:
    """The secret values this process holds, and :meth:`mask` to replace them in text.

    Thread-safe: :meth:`hold` swaps in a new snapshot that :meth:`mask` reads whole.
    Values shorter than :data:`MIN_HELD_LENGTH` are not held.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()
        self._snapshot = _Snapshot()

    def hold(self, value: str) -> None:
        """Mask ``value`` (and its spellings) from now on."""
        if len(value) < MIN_HELD_LENGTH or value in self._values:
            return
        with self._lock:
            self._values.add(value)
            spellings = sorted(
                {s for v in self._values for s in _spellings(v)}, key=len, reverse=True
            )
            fragments = frozenset(
                s[i : i + FRAGMENT_LENGTH]
                for s in spellings
                for i in range(len(s) - FRAGMENT_LENGTH + 1)
            )
            blocks = frozenset(
                f[i : i + _BLOCK] for f in fragments for i in range(FRAGMENT_LENGTH - _BLOCK + 1)
            )
            whole = re.compile("|".join(re.escape(s) for s in spellings))
            self._snapshot = _Snapshot(tuple(spellings), whole, fragments, blocks)

    def forget_all(self) -> None:
        """Hold nothing any more (tests)."""
        with self._lock:
            self._values.clear()
            self._snapshot = _Snapshot()

    def __len__(self) -> int:
        return len(self._values)

    def mask(self, text: str) -> str:
        """``text`` with every held value, fragment or partial echo of one replaced by ``[REDACTED]``."""
        return _mask_held(self._snapshot, text)

    def mask_all(self, text: str) -> str:
        """:meth:`mask`, then :func:`mask_key_shaped`; short texts' results are remembered."""
        snapshot = self._snapshot
        known = snapshot.known.get(text)
        if known is not None:
            return known
        masked = mask_key_shaped(_mask_held(snapshot, text))
        if len(text) <= _KNOWN_LENGTH:
            if len(snapshot.known) >= _KNOWN_TEXTS:
                snapshot.known.clear()  # bounded; what repeats comes back at once
            snapshot.known[text] = masked
        return masked


def _mask_held(snapshot: _Snapshot, text: str) -> str:
    if snapshot.whole is None or not text:
        return text
    text = snapshot.whole.sub(MASKED, text)
    if _LONG_RUN.search(text) is not None:
        text = _LONG_RUN.sub(lambda m: _mask_fragments(m.group(), snapshot), text)
    return _mask_echoes(text, snapshot.spellings)


def _in_token(char: str) -> bool:
    return not char.isspace() and char not in _TOKEN_ENDS


def _mask_echoes(text: str, spellings: tuple[str, ...]) -> str:
    if "**" not in text and "..." not in text and "\u2026" not in text and "\u2022" not in text:
        return text  # no mask run (what _MASK_RUN matches) in it
    parts, last = [], 0
    for run in _MASK_RUN.finditer(text):
        if run.start() < last:
            continue  # inside the token just handled
        start, end = run.start(), run.end()
        while start > last and _in_token(text[start - 1]):
            start -= 1
        while end < len(text) and _in_token(text[end]):
            end += 1
        parts += [text[last:start], _mask_echo(text[start:end], spellings)]
        last = end
    if not parts:
        return text
    parts.append(text[last:])
    return "".join(parts)


def _mask_fragments(run: str, snapshot: _Snapshot) -> str:
    blocks = snapshot.blocks
    for i in range(0, len(run) - _BLOCK + 1, _BLOCK):
        if run[i : i + _BLOCK] in blocks:
            break
    else:
        return run  # no window of it can be a fragment
    fragments = snapshot.fragments
    covered: list[tuple[int, int]] = []
    for i in range(len(run) - FRAGMENT_LENGTH + 1):
        if run[i : i + FRAGMENT_LENGTH] in fragments:
            if covered and covered[-1][1] >= i:
                covered[-1] = (covered[-1][0], i + FRAGMENT_LENGTH)
            else:
                covered.append((i, i + FRAGMENT_LENGTH))
    if not covered:
        return run
    parts, last = [], 0
    for start, end in covered:
        parts += [run[last:start], MASKED]
        last = end
    parts.append(run[last:])
    return "".join(parts)


def _mask_echo(token: str, spellings: tuple[str, ...]) -> str:
    """``token`` (which holds a mask run) replaced when what it shows around it is a held value's."""
    runs = list(_MASK_RUN.finditer(token))
    head = token[: runs[0].start()]
    tail = token[runs[-1].end() :]
    heads = [head[i:] for i in range(len(head) - _MIN_HEAD + 1)]
    tails = [tail[:j] for j in range(len(tail), _MIN_TAIL - 1, -1)]
    for value in spellings:
        if any(value.startswith(h) for h in heads) or any(value.endswith(t) for t in tails):
            return MASKED
    return token


HELD_SECRETS = SecretValues()
"""The process's held secret values: every :class:`Secret` adds its own."""


def hold_secret(value: str) -> None:
    """Mask ``value`` wherever text is masked, from now on (a password inside a URL, say)."""
    HELD_SECRETS.hold(value)


def mask_secrets(text: str) -> str:
    """``text`` with every held secret value, and anything key-shaped, masked."""
    return HELD_SECRETS.mask_all(text)


@attrs.frozen(repr=False)
class Secret:
    """A named secret. ``repr``, ``str`` and logs see ``Secret('name', '***')``.

    Read the value only where it is used, with :meth:`reveal`. Its value is held
    in :data:`HELD_SECRETS` from the moment the ``Secret`` exists, so text the
    service sends or logs never carries it.
    """

    name: str
    _value: str = attrs.field(alias="value", eq=False, hash=False)

    def __attrs_post_init__(self) -> None:
        HELD_SECRETS.hold(self._value)

    def reveal(self) -> str:
        """Return the secret value; never log or echo it."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({self.name!r}, '***')"

    __str__ = __repr__

    def __getstate__(self) -> dict[str, str]:
        # Pickling is copying: refuse to let the value leave this way.
        raise TypeError("a Secret cannot be pickled")
