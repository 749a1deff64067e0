"""Calling the SDK's Assistants-API methods, which it marks deprecated."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

# ``beta.threads`` methods warn with the first message, ``beta.assistants`` ones with the second.
_DEPRECATION = r"The Assistants API is deprecated|deprecated\Z"


@contextlib.contextmanager
def deprecated_api() -> Iterator[None]:
    """Silence only the SDK's Assistants-API deprecation warnings, for a synchronous call.

    The SDK warns when a ``beta.threads`` or ``beta.assistants`` method is *called*, before the
    coroutine it returns is awaited. ``catch_warnings`` changes process-wide
    state, so the block must not await: create the coroutine inside, await it
    after. We keep the API on purpose (see the adapter's docstring); any other
    warning still reaches the caller.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_DEPRECATION, category=DeprecationWarning)
        yield
