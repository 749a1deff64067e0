"""Secrets masked by value: whole, encoded, in fragments and in partial echoes."""

from __future__ import annotations

import io
import json
import logging
from urllib.parse import quote, quote_plus

import pytest
import structlog

from assistant_service.domain.secrets import (
    HELD_SECRETS,
    MASKED,
    Secret,
    SecretValues,
    mask_secrets,
)
from assistant_service.entrypoints.composition import hold_url_credentials
from assistant_service.entrypoints.http.codec import dumps
from assistant_service.entrypoints.logs import configure_logging
from assistant_service.entrypoints.settings import LogFormat, Settings

VALUE = "AKx9.q7/Lm+Zt=p2~w:Rv#8s&Yd!4Hc"


@pytest.fixture
def held() -> SecretValues:
    values = SecretValues()
    values.hold(VALUE)
    return values


@pytest.mark.parametrize(
    "echo",
    [
        VALUE,
        quote(VALUE, safe=""),
        quote_plus(VALUE, safe=""),
        json.dumps(VALUE)[1:-1],
        VALUE[2:16],  # a run of 12 or more of its characters
        f"{VALUE[:5]}***...{VALUE[-3:]}",
        f"{VALUE[:6]}\u2026",
        f"****************{VALUE[-4:]}",
    ],
)
def test_a_held_value_is_masked_however_it_is_echoed(held, echo):
    masked = held.mask(f"Incorrect API key provided: {echo}. Try again.")
    # A partial echo is a token of its own: its trailing full stop goes with it.
    assert (
        masked.replace(f"{MASKED}.", MASKED) == f"Incorrect API key provided: {MASKED} Try again."
    )


@pytest.mark.parametrize(
    "text",
    [
        "nothing secret here... at all ***",
        "AKx9 is four characters only",
        f"{VALUE[:10]} is ten of them",
        "run_0123456789abcdef0123456789abcdef",
    ],
)
def test_ordinary_text_is_left_alone(held, text):
    assert held.mask(text) == text


def test_short_values_are_not_held():
    values = SecretValues()
    values.hold("pw")
    assert len(values) == 0
    assert values.mask("a pw here") == "a pw here"


def test_a_secret_is_held_from_the_moment_it_exists():
    secret = Secret("odd", "q9#Vt!e2+Lr7/Wm4")
    assert HELD_SECRETS.mask(secret.reveal()) == MASKED
    assert mask_secrets(f"echo {secret.reveal()}") == f"echo {MASKED}"


def test_shape_masking_stays_behind_the_values():
    assert mask_secrets("sk-abcdefghijklmnop and Bearer tok123") == "sk-abcd*** and Bearer ***"


def test_the_password_of_a_url_is_held_raw_and_decoded():
    hold_url_credentials("redis://default:p%40ss-W0rd-2026@127.0.0.1:6379/0")
    assert mask_secrets("AUTH p@ss-W0rd-2026 refused") == f"AUTH {MASKED} refused"
    assert mask_secrets("url p%40ss-W0rd-2026") == f"url {MASKED}"


def test_the_edge_json_masks_every_string_and_stays_json():
    value = 'q"uo\\te-d+Secret/2026'
    Secret("quoted", value)
    body = dumps({"error": {"message": f"bad {value}", "items": [value, 3]}})
    assert json.loads(body) == {"error": {"message": f"bad {MASKED}", "items": [MASKED, 3]}}


def test_log_lines_mask_held_values_in_any_field():
    value = "Zx81-odd.shape/key+Q"
    Secret("log", value)
    buffer = io.StringIO()
    configure_logging(Settings(log_format=LogFormat.JSON), stream=buffer)
    structlog.get_logger("t").warning("upstream.refused", detail=f"echo {value[:5]}***{value[-3:]}")
    structlog.get_logger("t").warning("upstream.refused", detail={"nested": [value]})
    structlog.reset_defaults()
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == "assistant_service"]:
        root.removeHandler(handler)
    root.setLevel(logging.WARNING)
    text = buffer.getvalue()
    assert value not in text
    assert value[:5] + "***" not in text
    assert text.count(MASKED) == 2


def test_a_text_masked_before_a_value_was_held_is_masked_after():
    # Masked texts are remembered: holding a value must forget what was remembered.
    values = SecretValues()
    values.hold("first-value-of-2026")
    text = "the answer carries Lq8#late-comer-Z2 now"
    assert values.mask_all(text) == text
    values.hold("Lq8#late-comer-Z2")
    assert values.mask_all(text) == f"the answer carries {MASKED} now"
    assert values.mask_all(text) == f"the answer carries {MASKED} now"


def test_remembered_texts_are_bounded():
    values = SecretValues()
    values.hold("bounded-value-2026")
    for n in range(5000):
        assert values.mask_all(f"text {n}") == f"text {n}"
    assert len(values._snapshot.known) <= 2048


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # IGNORECASE matches the long s and the Kelvin sign: the quick test must too.
        ("key \u017fk-abcdefghij here", "key \u017fk-abcd*** here"),
        ("key s\u212a-abcdefghij here", "key s\u212a-abcd*** here"),
        ("BEARER tok123 sent", "BEARER *** sent"),
    ],
)
def test_key_shapes_are_masked_in_any_case(text, expected):
    assert SecretValues().mask_all(text) == expected


@pytest.mark.parametrize("offset", range(13))
def test_a_fragment_is_found_at_any_offset_in_a_longer_token(held, offset):
    # The quick test looks at blocks at fixed positions: no alignment may slip through.
    token = "z" * offset + VALUE[5:17] + "zz"
    assert held.mask(f"saw {token} here") == f"saw {'z' * offset}{MASKED}zz here"
