"""Settings from the environment: defaults, parsing, and one message naming every problem."""

from __future__ import annotations

import pytest

from assistant_service.domain.secrets import Secret
from assistant_service.entrypoints.settings import (
    Environment,
    LLMBackend,
    LogFormat,
    LogLevel,
    Settings,
    SettingsError,
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
    assert settings.openai_api_key_secret == "openai-api-key"  # noqa: S105 -- a name


def test_an_unknown_environment_is_refused():
    with pytest.raises(
        SettingsError, match=r"ENVIRONMENT: expected one of development\|production"
    ):
        load_settings({"ENVIRONMENT": "staging"})
