"""The profile codec: JSON in and out, errors that name the source and each field."""

from __future__ import annotations

import json

import pytest

from assistant_service.adapters.config.codec import (
    MAX_PROFILE_BYTES,
    is_valid_assistant_id,
    profile_from_dict,
    profile_from_json,
    profile_to_dict,
    profile_to_json,
)
from assistant_service.domain.errors import ConfigurationError
from assistant_service.domain.models import AssistantProfile, RunLimits

PROFILE = AssistantProfile(
    id="weather",
    model="gpt-5-mini",
    instructions="Be brief.",
    tools=("weather.get_forecast",),
    temperature=0.3,
    limits=RunLimits(max_tool_rounds=2),
    remote_id="asst_1",
)


def test_the_json_form_has_tools_as_a_list_and_limits_nested():
    data = profile_to_dict(PROFILE)
    assert data["tools"] == ["weather.get_forecast"]
    assert data["limits"]["max_tool_rounds"] == 2
    assert json.loads(profile_to_json(PROFILE)) == data
    assert profile_to_json(PROFILE).endswith("}\n")


def test_it_round_trips_through_text_and_bytes():
    assert profile_from_json(profile_to_json(PROFILE), "x") == PROFILE
    assert profile_from_json(profile_to_json(PROFILE).encode(), "x") == PROFILE


def test_missing_optional_fields_take_their_defaults():
    profile = profile_from_json('{"id": "a", "model": "m", "limits": {"tool_timeout": 5}}', "x")
    assert profile == AssistantProfile(id="a", model="m", limits=RunLimits(tool_timeout=5.0))
    assert isinstance(profile.limits.tool_timeout, float)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"model": "m"}, "src.json: id: required field missing"),
        ({"id": "a", "model": 5}, "src.json: model: expected a string, got an integer"),
        (
            {"id": "a", "model": "m", "tools": "x"},
            "tools: expected a list of strings, got a string",
        ),
        (
            {"id": "a", "model": "m", "tools": ["x", 1]},
            "tools[1]: expected a string, got an integer",
        ),
        ({"id": "a", "model": "m", "temperature": "hot"}, "temperature: expected a number"),
        (
            {"id": "a", "model": "m", "temperature": True},
            "temperature: expected a number, got a boolean",
        ),
        ({"id": "a", "model": "m", "limits": None}, "limits: expected an object, got null"),
        (
            {"id": "a", "model": "m", "limits": {"max_tool_rounds": 1.5}},
            "limits.max_tool_rounds: expected an integer",
        ),
        (
            {"id": "a", "model": "m", "limits": {"max_tool_rounds": 0}},
            "max_tool_rounds must be positive",
        ),
        ({"id": "a", "model": "m", "limits": {"rounds": 3}}, "limits: unknown field(s): rounds"),
        ({"id": "a", "model": "m", "colour": "red"}, "src.json: unknown field(s): colour"),
        ({"id": "../etc", "model": "m"}, "id: '../etc' is not a valid assistant id"),
        ({"id": "a", "model": "  "}, "model: must not be empty"),
    ],
)
def test_each_bad_field_is_named(data, message):
    with pytest.raises(ConfigurationError) as caught:
        profile_from_dict(data, "src.json")
    assert message in str(caught.value)
    assert str(caught.value).startswith("src.json: ")


def test_every_bad_field_is_reported_at_once():
    with pytest.raises(ConfigurationError) as caught:
        profile_from_dict({"id": 1, "model": 2, "tools": [3]}, "s")
    assert str(caught.value).count(";") == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1, 2]", "s: expected a JSON object, got a list"),
        ('{"id": ', "s: not valid JSON: Expecting value (line 1, column 8)"),
        (b"\xff\xfe", "s: not UTF-8 text"),
        ("x" * (MAX_PROFILE_BYTES + 1), "larger than"),
    ],
)
def test_text_that_is_not_a_profile_is_refused(text, message):
    with pytest.raises(ConfigurationError, match=r"^s: ") as caught:
        profile_from_json(text, "s")
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("assistant_id", "valid"),
    [
        ("weather", True),
        ("a-b_c9", True),
        ("", False),
        ("../x", False),
        (".x", False),
        ("a" * 65, False),
    ],
)
def test_assistant_ids_are_safe_file_and_object_names(assistant_id, valid):
    assert is_valid_assistant_id(assistant_id) is valid
