"""The 429 refusals of the limits and budgets, and where a caller stands.

Apart from the ``limits`` library (``limiting.py``) so that the error mapping
(``codec.py``, ``errors.py``) and the settings load without the server extra.
"""

from __future__ import annotations

import attrs

from assistant_service.domain.errors import AssistantServiceError


class TooManyRequestsError(AssistantServiceError):
    """Refused by a limit (HTTP 429); ``retry_after`` is the seconds until it frees.

    ``quota`` is where the caller stands against its request limit (the
    ``RateLimit-*`` headers), when one applies.
    """

    code = "too_many_requests"

    def __init__(self, message: str, *, retry_after: float, quota: Quota | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.quota = quota


class RateLimitedError(TooManyRequestsError):
    """The caller made as many requests as its rate limit allows."""

    code = "rate_limited"


class BudgetExhaustedError(TooManyRequestsError):
    """The API key's runs used its daily token budget."""

    code = "budget_exhausted"


@attrs.frozen
class Quota:
    """Where a caller stands against its request limit, after this request."""

    limit: int
    remaining: int
    # Seconds until the window frees a request (whole seconds, rounded up).
    reset: int

    def headers(self) -> dict[str, str]:
        """The ``RateLimit-Limit``, ``-Remaining`` and ``-Reset`` headers."""
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset),
        }
