"""Readiness: can this process serve a chat right now?"""

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
