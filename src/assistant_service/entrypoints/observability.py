"""The composition of observability: which observers the settings and the extras allow.

Metrics are on unless ``METRICS=off``, when ``prometheus-client`` is installed;
traces are on when the ``otel`` extra is installed and the ``OTEL_*`` variables
ask for an exporter. What is off costs nothing: no observer, no middleware.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs
import structlog

from assistant_service.adapters.observability import upstream
from assistant_service.application.observing import NO_OBSERVER, combine
from assistant_service.domain.errors import ConfigurationError
from assistant_service.entrypoints.settings import Settings, Switch
from assistant_service.ports.observer import Observer

log = structlog.get_logger(__name__)


@attrs.frozen
class Observability:
    """What the edge needs: the observer, whether to serve ``/metrics``, the tracer provider.

    ``metrics_registry`` is the Prometheus registry (``None``: the client's global
    one); ``tracer_provider`` is ``None`` when tracing is off.
    """

    observer: Observer = NO_OBSERVER
    metrics: bool = False
    serve_metrics_route: bool = False
    metrics_registry: Any = None
    tracer_provider: Any = None

    def subscribe_upstream(self) -> Callable[[], None]:
        """Report the adapters' upstream calls to the observer; call the result to stop."""
        if self.observer is NO_OBSERVER:
            return lambda: None
        return upstream.subscribe(self.observer)


def observability_from_settings(
    settings: Settings,
    closers: list[Any],
    *,
    environ: Mapping[str, str] | None = None,
    metrics_registry: Any = None,
    tracer_provider: Any = None,
) -> Observability:
    """Build the observers ``settings`` and ``OTEL_*`` ask for; append what to close to ``closers``.

    ``metrics_registry`` and ``tracer_provider`` replace the defaults (tests pass
    their own). Raises ``ConfigurationError`` for an unknown ``OTEL_TRACES_EXPORTER``.
    """
    backend = settings.backend.value
    observers: list[Observer] = []
    metrics = False
    if settings.metrics is Switch.ON:
        try:
            from assistant_service.adapters.observability.prometheus import (  # noqa: PLC0415
                PrometheusObserver,
            )

            observers.append(PrometheusObserver.create(backend, metrics_registry))
            metrics = True
        except ImportError:
            log.info("metrics.off", reason="prometheus-client is not installed")
    if tracer_provider is None:
        tracer_provider = _tracer_provider(environ, closers)
    if tracer_provider is not None:
        from assistant_service.adapters.observability.otel import (  # noqa: PLC0415
            OpenTelemetryObserver,
        )

        observers.append(OpenTelemetryObserver.create(tracer_provider, backend))
    return Observability(
        observer=combine(observers),
        metrics=metrics,
        serve_metrics_route=metrics and settings.metrics_port is None,
        metrics_registry=metrics_registry,
        tracer_provider=tracer_provider,
    )


def _tracer_provider(environ: Mapping[str, str] | None, closers: list[Any]) -> Any:
    try:
        from assistant_service.adapters.observability.otel import (  # noqa: PLC0415
            tracer_provider_from_environment,
        )

        provider = tracer_provider_from_environment(environ)
    except ImportError:
        return None
    except ValueError as error:
        raise ConfigurationError(str(error)) from None
    if provider is not None:
        log.info("tracing.on")

        async def flush() -> None:
            # Blocks up to the exporter's timeout: acceptable once, at shutdown.
            provider.shutdown()

        closers.append(flush)
    return provider
