"""RATE_LIMIT, TRUSTED_PROXIES and the keys' rate_limit are checked at start-up."""

from __future__ import annotations

import json

import pytest

from assistant_service.adapters.state.memory import InMemoryStateStore
from assistant_service.domain.errors import ConfigurationError
from assistant_service.entrypoints.composition import edge_limits
from assistant_service.entrypoints.http.auth import ApiKeys
from assistant_service.entrypoints.settings import SettingsError, load_settings

KEY = "a-key-of-sixteen-characters"


def test_the_limit_settings_are_read():
    settings = load_settings({"RATE_LIMIT": "60/minute", "TRUSTED_PROXIES": "10.0.0.0/8, ::1"})
    assert settings.rate_limit == "60/minute"
    assert settings.trusted_proxies == "10.0.0.0/8, ::1"
    assert load_settings({}).rate_limit is None


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("lots", "not a rate limit: 'lots'"),
        ("60/fortnight", "not a rate limit"),
        ("0/minute", "1 request or more"),
        ("5/second;100/minute", "give one rate limit, got 2"),
    ],
)
def test_a_bad_rate_limit_stops_start_up_saying_why(value, says):
    with pytest.raises(SettingsError, match="RATE_LIMIT: ") as raised:
        load_settings({"RATE_LIMIT": value})
    assert says in str(raised.value)


def test_bad_trusted_proxies_are_named_with_every_other_problem():
    with pytest.raises(SettingsError) as raised:
        load_settings({"TRUSTED_PROXIES": "10.0.0.0/8, nope", "RATE_LIMIT": "x"})
    message = str(raised.value)
    assert "TRUSTED_PROXIES: not an IP address or CIDR block: 'nope'" in message
    assert "RATE_LIMIT: " in message


@pytest.mark.parametrize("rate_limit", ["soon", 60, "0/hour", "1/second,2/minute"])
def test_a_keys_bad_rate_limit_is_refused_naming_the_key(rate_limit):
    entries = [{"id": "web", "key": KEY, "rate_limit": rate_limit}]
    with pytest.raises(ConfigurationError, match=r"API_KEYS\[0\] \(web\): rate_limit"):
        ApiKeys.parse(json.dumps(entries))


def test_limits_are_built_only_when_something_is_limited():
    store = InMemoryStateStore()
    assert edge_limits(load_settings({}), None, store) is None
    keys = ApiKeys.parse(json.dumps([{"id": "web", "key": KEY}]))
    assert edge_limits(load_settings({"TRUSTED_PROXIES": "10.0.0.1"}), keys, store) is None

    limits = edge_limits(load_settings({"RATE_LIMIT": "60/minute"}), None, store)
    assert limits is not None
    assert limits.requests is not None
    assert limits.budgets is None
    assert limits.requests.limit_for(None) is not None

    budgeted = ApiKeys.parse(json.dumps([{"id": "web", "key": KEY, "daily_tokens": 10}]))
    limits = edge_limits(load_settings({}), budgeted, store)
    assert limits is not None
    assert limits.requests is None
    assert limits.budgets is not None
    assert limits.budgets.applies_to("web")
    assert not limits.budgets.applies_to("other")
