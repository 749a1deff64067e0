"""The Quart app: ``create_app(services)`` wires routes, the socket and error handlers."""

from __future__ import annotations

from quart import Quart, Response, websocket

from assistant_service.adapters.state.memory import InMemoryStateStore
from assistant_service.entrypoints.http.access import register_access
from assistant_service.entrypoints.http.auth import WebSocketTickets
from assistant_service.entrypoints.http.backpressure import (
    bound_request_bodies,
    bound_websocket_frames,
)
from assistant_service.entrypoints.http.connections import ConnectionGuard
from assistant_service.entrypoints.http.correlation import correlation_id_of
from assistant_service.entrypoints.http.cors import CorsMiddleware, CorsPolicy
from assistant_service.entrypoints.http.errors import register_error_handlers
from assistant_service.entrypoints.http.observing import observed_asgi, register_observability
from assistant_service.entrypoints.http.pages import register_pages
from assistant_service.entrypoints.http.routes import register_routes
from assistant_service.entrypoints.http.runs import background_runner
from assistant_service.entrypoints.http.services import Services
from assistant_service.entrypoints.http.state import EdgeState, RunSlots
from assistant_service.entrypoints.http.throttle import register_limits
from assistant_service.entrypoints.http.websocket import SocketSession

__all__ = ["Services", "create_app", "edge_state"]

EXTENSION = "assistant_service"


def create_app(services: Services) -> Quart:
    """A Quart app serving ``services``; limits come from ``services.settings``.

    Quart's ``RESPONSE_TIMEOUT`` stays for plain responses; event streams turn
    it off for themselves (their runs are bounded by the profile's limits).
    """
    settings = services.settings
    # No /static route: the package's pages serve their own assets (see pages.py).
    app = Quart("assistant_service", static_folder=None)
    bound_websocket_frames(app)
    bound_request_bodies(app)
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        # Errors are ours to render, in tests too: never Quart's HTML traceback.
        PROPAGATE_EXCEPTIONS=False,
        # Background runs still going at shutdown are cancelled then (and recorded
        # as interrupted), like every other run past the graceful timeout.
        BACKGROUND_TASK_SHUTDOWN_TIMEOUT=settings.graceful_timeout,
    )
    slots = RunSlots(
        settings.max_concurrent_runs, on_change=services.observability.observer.run_slots
    )
    state = EdgeState(slots=slots)
    app.extensions[EXTENSION] = state
    register_error_handlers(app)
    tickets = WebSocketTickets(services.tokens or InMemoryStateStore())
    register_access(app, services, tickets)
    # After the key check: a caller is counted by its key when keys are on.
    register_limits(app, services)

    @app.after_serving
    async def close_clients() -> None:
        for close in services.closers:
            await close()

    register_routes(app, services, state)
    register_observability(app, services.observability)
    register_pages(
        app,
        playground=settings.serve_playground,
        metrics=services.observability.serve_metrics_route,
        api_keys=services.api_keys is not None,
        rate_limits=services.limits is not None,
    )

    @app.websocket("/stream")
    async def stream() -> Response | None:
        correlation_id = correlation_id_of(websocket.scope)
        await websocket.accept()
        session = SocketSession(
            services=services,
            state=state,
            receive=websocket.receive,
            send=websocket.send,
            close=websocket.close,
            correlation_id=correlation_id,
            start_soon=background_runner(app, state),
        )
        await session.serve()
        return None

    # Innermost: a preflight is answered (and a foreign socket refused) before any route.
    app.asgi_app = CorsMiddleware(app.asgi_app, CorsPolicy.of(settings.cors_origins))  # type: ignore[assignment,method-assign]
    observed = observed_asgi(app, services.observability, stopping=state.stopping)
    # Outermost: it bounds the server's own send (see connections.py).
    guarded = ConnectionGuard(observed, state.connections, settings.send_timeout)
    app.asgi_app = guarded  # type: ignore[assignment,method-assign]
    return app


def edge_state(app: Quart) -> EdgeState:
    """The app's shared state (the server drives its shutdown stages and fills its connections)."""
    state: EdgeState = app.extensions[EXTENSION]
    return state
