"""The current trace context as headers for upstream calls (W3C ``traceparent``).

Empty when the ``otel`` extra is not installed or no span is recording: the
check for the extra is made once, at first use.
"""

from __future__ import annotations

from typing import Any

_inject: Any = None
_looked = False


def trace_headers() -> dict[str, str]:
    """``traceparent`` (and ``tracestate``, baggage) for the current span, as the
    propagators of ``OTEL_PROPAGATORS`` write them; ``{}`` without OpenTelemetry."""
    global _inject, _looked  # noqa: PLW0603 -- a once-only lazy import
    if not _looked:
        _looked = True
        try:
            from opentelemetry.propagate import inject  # noqa: PLC0415
        except ImportError:
            _inject = None
        else:
            _inject = inject
    if _inject is None:
        return {}
    headers: dict[str, str] = {}
    _inject(headers)
    return headers
