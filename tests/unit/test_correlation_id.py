"""The correlation id adapters read: bound by the HTTP layer, or by an application in structlog."""

from __future__ import annotations

import structlog

from assistant_service.adapters.correlation import bound_correlation_id, current_correlation_id


def test_the_bound_id_is_read_and_on_log_lines_and_unbound_after_the_block():
    assert current_correlation_id() is None
    with bound_correlation_id("req-1"):
        assert current_correlation_id() == "req-1"
        assert structlog.contextvars.get_contextvars()["correlation_id"] == "req-1"
        with bound_correlation_id("req-2"):
            assert current_correlation_id() == "req-2"
        assert current_correlation_id() == "req-1"
    assert current_correlation_id() is None
    assert "correlation_id" not in structlog.contextvars.get_contextvars()


def test_an_id_an_application_bound_in_structlog_is_read_too():
    with structlog.contextvars.bound_contextvars(correlation_id="app-7"):
        assert current_correlation_id() == "app-7"


def test_ids_unsafe_in_headers_or_log_lines_are_not_read():
    for unsafe in ("", "x" * 129, "tab\there", "new\nline", "é"):
        with bound_correlation_id(unsafe):
            assert current_correlation_id() is None
