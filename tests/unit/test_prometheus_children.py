"""The Prometheus observer's metrics: children remembered by label values, counts unchanged."""

from __future__ import annotations

import gc

import prometheus_client
import pytest

from assistant_service.adapters.observability import prometheus
from assistant_service.adapters.observability.prometheus import PrometheusObserver
from assistant_service.ports.observer import HttpRequest


def _requests(registry, route, status) -> float | None:
    return registry.get_sample_value(
        "assistant_http_requests_total", {"route": route, "method": "GET", "status": status}
    )


def test_each_label_set_is_counted_apart_and_its_child_is_looked_up_once():
    registry = prometheus_client.CollectorRegistry()
    observer = PrometheusObserver.create("chat", registry)
    for status in (200, 200, 404, 200):
        observer.http_request(HttpRequest("/start", "GET", "http", status, 0.01))
    assert _requests(registry, "/start", "200") == 3
    assert _requests(registry, "/start", "404") == 1
    family = observer._metrics.http_requests  # the cache under test
    assert family.labels("/start", "GET", "200") is family.labels("/start", "GET", "200")


def test_past_the_bound_label_sets_are_still_counted(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(prometheus, "_MAX_CHILDREN", 2)
    registry = prometheus_client.CollectorRegistry()
    observer = PrometheusObserver.create("chat", registry)
    for route in ("/a", "/b", "/c", "/c", "/d"):
        observer.http_request(HttpRequest(route, "GET", "http", 200, 0.01))
    assert [_requests(registry, route, "200") for route in ("/a", "/b", "/c", "/d")] == [1, 1, 2, 1]


def test_every_new_registry_gets_its_own_metrics_even_where_an_old_ones_id_is_reused():
    # Keyed by id(), a registry that was collected left its metrics to a new one at its address.
    for _ in range(20):
        registry = prometheus_client.CollectorRegistry()
        PrometheusObserver.create("chat", registry).http_request(
            HttpRequest("/start", "GET", "http", 200, 0.01)
        )
        assert _requests(registry, "/start", "200") == 1
        del registry
        gc.collect()
