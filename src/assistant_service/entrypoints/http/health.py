"""Readiness: can this process serve a chat right now? And how its circuit breakers stand.

An open breaker is reported but leaves the process ready: every instance sees
the same upstream, so taking them all out of rotation would serve nobody,
and the breaker closes only when a call comes through to probe the upstream.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
import structlog

from assistant_service.domain.errors import AssistantServiceError
from assistant_service.entrypoints.http.services import Services
from assistant_service.entrypoints.http.state import EdgeState

log = structlog.get_logger(__name__)

CHECK_TIMEOUT = 5.0


async def readiness(services: Services, state: EdgeState) -> tuple[bool, dict[str, str]]:
    """Run every check; each result is ``"ok"`` or an error code (never a secret or a message)."""
    checks: dict[str, str] = {}
    if state.draining.is_set():
        checks["server"] = "draining"
    checks["config"] = await _check(_configs, services)
    checks["secrets"] = await _check(_secrets, services)
    if services.state is not None:
        checks["state_store"] = await _check(_state_store, services)
    return all(value == "ok" for value in checks.values()), checks


def breakers(services: Services) -> dict[str, dict[str, object]]:
    """Each circuit breaker's state, faults in a row and seconds until it lets a probe through."""
    breaker = services.breaker
    return {} if breaker is None else {breaker.name: breaker.status().as_dict()}


async def _configs(services: Services) -> None:
    await services.configs.list()
    default = services.assistant.default_assistant_id
    if default:
        await services.configs.get(default)


async def _secrets(services: Services) -> None:
    for name in services.required_secrets:
        await services.secrets.get(name)


async def _state_store(services: Services) -> None:
    if services.state is not None:
        await services.state.ping()


async def _check(check: Callable[[Services], Awaitable[None]], services: Services) -> str:
    try:
        with anyio.fail_after(CHECK_TIMEOUT):
            await check(services)
    except TimeoutError:
        log.warning("readiness.timeout", check=check.__name__)
        return "timeout"
    except AssistantServiceError as error:
        log.warning("readiness.failed", check=check.__name__, error_code=error.code)
        return error.code
    except Exception:
        log.exception("readiness.error")
        return "error"
    return "ok"
