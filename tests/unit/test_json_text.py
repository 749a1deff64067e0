"""The hot path's JSON: orjson first, the json module for what orjson refuses."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math

import pytest

from assistant_service.adapters.json_text import dumps_bytes, dumps_text, loads


def test_text_is_compact_utf8_json_that_reads_back_the_same():
    value = {"type": "message.delta", "text": "é☃😀", "seq": 3, "ok": True, "none": None}
    encoded = dumps_bytes(value)
    assert (
        encoded == '{"type":"message.delta","text":"é☃😀","seq":3,"ok":true,"none":null}'.encode()
    )
    assert dumps_text(value) == encoded.decode()
    assert loads(encoded) == value
    assert loads(encoded.decode()) == value


@pytest.mark.parametrize(
    "value",
    [
        pytest.param({"big": 2**70}, id="an integer past 64 bits"),
        pytest.param({1: "one"}, id="a key that is not a string"),
        pytest.param({"text": "\ud800"}, id="a lone surrogate"),
    ],
)
def test_what_orjson_refuses_the_json_module_encodes(value):
    assert json.loads(dumps_text(value)) == json.loads(json.dumps(value))
    assert json.loads(dumps_bytes(value)) == json.loads(json.dumps(value))


@dataclasses.dataclass
class _Point:
    x: int


@pytest.mark.parametrize(
    "value", [dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc), _Point(1), object()]
)
def test_what_json_cannot_hold_is_refused_as_json_dumps_refuses_it(value):
    with pytest.raises(TypeError):
        dumps_bytes({"value": value})
    with pytest.raises(TypeError):
        dumps_text([value])


def test_text_an_earlier_version_wrote_with_the_json_module_still_reads():
    assert math.isnan(loads("[NaN]")[0])
    assert loads('"\\ud800"') == "\ud800"


def test_what_is_not_json_is_a_value_error():
    with pytest.raises(ValueError, match=r"."):
        loads(b"{not json")
