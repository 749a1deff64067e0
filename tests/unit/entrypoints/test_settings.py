"""Settings from the environment: defaults, parsing, and one message naming every problem."""

from __future__ import annotations

import re

import pytest

from assistant_service.domain.secrets import Secret
from assistant_service.entrypoints.settings import (
    Environment,
    LLMBackend,
    LogFormat,
    LogLevel,
    Settings,
    SettingsError,
    StateStoreKind,
    load_settings,
)


def test_an_empty_environment_is_a_development_service_on_the_offline_model():
    settings = load_settings({})
    assert settings == Settings()
    assert settings.environment is Environment.DEVELOPMENT
    assert settings.backend is LLMBackend.OFFLINE
    assert settings.port == 8000


def test_values_are_parsed_and_choices_are_case_insensitive():
    settings = load_settings(
        {
            "PORT": "9000",
            "LOG_FORMAT": "KeyValue",
            "LOGGING_LEVEL": "debug",
            "GRACEFUL_TIMEOUT": "2.5",
            "MAX_CONCURRENT_RUNS": " 3 ",
            "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
            "STREAM": "",  # empty counts as unset
        }
    )
    assert settings.port == 9000
    assert settings.log_format is LogFormat.KEYVALUE
    assert settings.logging_level is LogLevel.DEBUG
    assert settings.graceful_timeout == 2.5
    assert settings.max_concurrent_runs == 3
    assert settings.openai_base_url == "http://127.0.0.1:9/v1"


def test_the_api_key_is_held_as_a_secret_and_selects_the_responses_backend():
    settings = load_settings({"OPENAI_API_KEY": "sk-test-123456"})
    assert isinstance(settings.openai_api_key, Secret)
    assert settings.openai_api_key.reveal() == "sk-test-123456"
    assert "sk-test-123456" not in repr(settings)
    assert settings.backend is LLMBackend.RESPONSES
    assert load_settings({"OPENAI_API_KEY": "sk-x", "LLM_BACKEND": "offline"}).backend is (
        LLMBackend.OFFLINE
    )


def test_one_error_names_every_bad_variable():
    with pytest.raises(SettingsError) as raised:
        load_settings(
            {
                "PORT": "eighty",
                "MAX_BODY_BYTES": "0",
                "LOG_FORMAT": "xml",
                "OPENAI_TIMEOUT": "nan",
                "GRACEFUL_TIMEOUT": "-1",
            }
        )
    message = raised.value.message
    for name in ("PORT", "MAX_BODY_BYTES", "LOG_FORMAT", "OPENAI_TIMEOUT", "GRACEFUL_TIMEOUT"):
        assert name in message
    assert "one of json|keyvalue" in message
    assert "'eighty'" in message


def test_production_requires_the_gcp_values_but_not_the_api_key():
    with pytest.raises(SettingsError) as raised:
        load_settings({"ENVIRONMENT": "production", "PORT": "x"})
    assert "production requires PROJECT_ID, BUCKET_ID, ASSISTANT_ID" in raised.value.message
    assert "PORT" in raised.value.message
    settings = load_settings(
        {"ENVIRONMENT": "production", "PROJECT_ID": "p", "BUCKET_ID": "b", "ASSISTANT_ID": "a"}
    )
    assert settings.production
    assert settings.openai_api_key is None
    assert settings.backend is LLMBackend.RESPONSES  # the key comes from Secret Manager
    assert settings.openai_api_key_secret == "openai-api-key"


def test_an_unknown_environment_is_refused():
    with pytest.raises(
        SettingsError, match=r"ENVIRONMENT: expected one of development\|production"
    ):
        load_settings({"ENVIRONMENT": "staging"})


def test_the_state_store_settings_are_parsed_and_the_redis_url_is_a_secret():
    url = "redis://:hunter2-pass@10.0.0.3:6379/0"
    settings = load_settings(
        {
            "STATE_STORE": "Redis",
            "REDIS_URL": url,
            "REDIS_KEY_PREFIX": "svc:",
            "RUN_LOCK_TTL": "12.5",
            "CONVERSATION_TTL": "86400",
        }
    )
    assert settings.state_store is StateStoreKind.REDIS
    assert settings.redis_url == Secret("REDIS_URL", url)
    assert settings.redis_url.reveal() == url
    assert settings.redis_key_prefix == "svc:"
    assert settings.run_lock_ttl == 12.5
    assert settings.conversation_ttl == 86400
    assert "hunter2" not in repr(settings)
    assert load_settings({}).state_store is StateStoreKind.MEMORY


def test_a_shared_store_without_what_it_needs_names_the_variable():
    with pytest.raises(SettingsError, match="STATE_STORE=redis requires REDIS_URL"):
        load_settings({"STATE_STORE": "redis"})
    with pytest.raises(SettingsError, match="STATE_STORE=firestore requires PROJECT_ID"):
        load_settings({"STATE_STORE": "firestore"})
    with pytest.raises(
        SettingsError, match=re.escape("STATE_STORE: expected one of memory|redis|firestore")
    ):
        load_settings({"STATE_STORE": "postgres"})


@pytest.mark.parametrize(
    ("name", "value"), [("RUN_LOCK_TTL", "0"), ("RUN_LOCK_TTL", "7200"), ("CONVERSATION_TTL", "5")]
)
def test_lease_and_history_lifetimes_out_of_range_are_refused(name, value):
    with pytest.raises(SettingsError, match=name):
        load_settings({name: value})


def test_the_circuit_breaker_settings_default_and_parse():
    assert (Settings().breaker_failures, Settings().breaker_cooldown) == (5, 30.0)
    settings = load_settings({"BREAKER_FAILURES": "3", "BREAKER_COOLDOWN": "2.5"})
    assert (settings.breaker_failures, settings.breaker_cooldown) == (3, 2.5)


@pytest.mark.parametrize(
    ("name", "value", "wanted"),
    [
        ("BREAKER_FAILURES", "0", "a positive integer"),
        ("BREAKER_FAILURES", "-2", "a positive integer"),
        ("BREAKER_FAILURES", "2.5", "an integer"),
        ("BREAKER_COOLDOWN", "0", "a positive number of seconds"),
        ("BREAKER_COOLDOWN", "-1", "a positive number of seconds"),
        ("BREAKER_COOLDOWN", "inf", "a number"),
        ("BREAKER_COOLDOWN", "soon", "a number"),
    ],
)
def test_circuit_breaker_settings_that_cannot_work_are_refused(name, value, wanted):
    with pytest.raises(SettingsError, match=re.escape(f"{name}: expected {wanted}")):
        load_settings({name: value})
