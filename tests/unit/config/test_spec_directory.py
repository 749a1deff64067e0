"""Spec directories: profile.json + tools.py checked together; errors name the file and the fix."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from assistant_service.adapters.config.spec_directory import (
    load_spec_directories,
    load_spec_directory,
)
from assistant_service.adapters.tools import FunctionToolRegistry
from assistant_service.domain.errors import ConfigurationError
from assistant_service.domain.tools import ToolCall

EXAMPLES = Path(__file__).parents[3] / "assistants"

TOOLS = '''
from assistant_service.adapters.tools import tool


@tool
def shout(text: str) -> str:
    """Say it louder.

    Args:
        text: What to say.
    """
    return text.upper()
'''


def make_spec(root: Path, name: str = "echo", profile=None, tools: str | None = TOOLS) -> Path:
    directory = root / name
    directory.mkdir(parents=True)
    if profile is not None:
        text = profile if isinstance(profile, str) else json.dumps(profile)
        (directory / "profile.json").write_text(text)
    if tools is not None:
        (directory / "tools.py").write_text(textwrap.dedent(tools))
    return directory


def test_the_weather_example_loads_with_its_tools():
    spec = load_spec_directory(EXAMPLES / "weather")
    assert spec.profile.id == "weather"
    assert spec.profile.tools == (
        "weather.get_forecast",
        "weather.convert_temperature",
        "weather.local_time",
    )
    schemas = {s.name: s.parameters for s in spec.tools.specs(spec.profile.tools)}
    assert schemas["weather.convert_temperature"]["properties"]["to"]["enum"] == [
        "celsius",
        "fahrenheit",
    ]
    assert schemas["weather.get_forecast"]["required"] == ["city", "days"]


def test_a_spec_tool_runs_and_renders_its_attrs_result():
    spec = load_spec_directory(EXAMPLES / "weather")
    bound = spec.tools.bind(
        ToolCall(id="c1", name="weather.get_forecast", arguments='{"city": "Oslo", "days": 2}')
    )
    forecast = json.loads(bound.render(bound.function()))
    assert [day["day"] for day in forecast] == [1, 2]


def test_short_and_full_tool_names_both_resolve(tmp_path):
    directory = make_spec(tmp_path, profile={"model": "m", "tools": ["shout", "echo.shout"]})
    assert load_spec_directory(directory).profile.tools == ("echo.shout", "echo.shout")


def test_a_root_loads_every_spec_into_one_registry(tmp_path):
    make_spec(tmp_path, "echo", profile={"model": "m", "tools": ["shout"]})
    make_spec(tmp_path, "bare", profile={"model": "m"}, tools=None)
    (tmp_path / "not-a-spec").mkdir()
    profiles, registry = load_spec_directories(tmp_path)
    assert [p.id for p in profiles] == ["bare", "echo"]
    assert registry.names() == ["echo.shout"]


def test_a_root_can_load_into_a_registry_holding_other_tools(tmp_path):
    make_spec(tmp_path, "echo", profile={"model": "m", "tools": ["shout"]})

    def ping() -> str:
        """Answer pong."""
        return "pong"

    registry = FunctionToolRegistry()
    registry.register(ping, namespace="shared")
    _profiles, loaded = load_spec_directories(tmp_path, registry=registry)
    assert loaded is registry
    assert registry.names() == ["shared.ping", "echo.shout"]


def test_loading_into_a_registry_that_has_the_tools_already_is_refused(tmp_path):
    directory = make_spec(tmp_path, profile={"model": "m", "tools": ["shout"]})
    registry = FunctionToolRegistry()
    load_spec_directory(directory, registry=registry)
    with pytest.raises(ConfigurationError, match=r"tools\.py: .*already registered"):
        load_spec_directory(directory, registry=registry)


@pytest.mark.parametrize(
    ("profile", "tools", "file", "expected"),
    [
        (None, TOOLS, "profile.json", 'missing; create it with at least {"model"'),
        ('{"model": ', TOOLS, "profile.json", "not valid JSON"),
        (
            {"model": "m", "tools": ["whisper"]},
            TOOLS,
            "profile.json",
            "tools[0]: unknown tool 'whisper'; tools.py defines: shout",
        ),
        (
            {"model": "m", "tools": ["shout"]},
            None,
            "profile.json",
            "unknown tool 'shout'; there is no tools.py",
        ),
        (
            {"model": "m", "temperature": "warm"},
            TOOLS,
            "profile.json",
            "temperature: expected a number",
        ),
        (
            {"model": "m", "limits": {"max_tool_round": 3}},
            TOOLS,
            "profile.json",
            "limits: unknown field(s): max_tool_round",
        ),
        (
            {"id": "other", "model": "m"},
            TOOLS,
            "profile.json",
            "differs from the directory name 'echo'",
        ),
        ({"model": "m"}, "def broken(:\n", "tools.py", "tools.py:1: syntax error"),
        (
            {"model": "m"},
            "import not_a_module_anywhere\n",
            "tools.py",
            "cannot import: ModuleNotFoundError",
        ),
        (
            {"model": "m"},
            "from assistant_service.adapters.tools import tool\n@tool\ndef f(x: object) -> str:\n    return ''\n",
            "tools.py",
            "parameter 'x': type object is not supported",
        ),
        (
            {"model": "m"},
            "from assistant_service.adapters.tools import tool\n@tool(namespace='other')\ndef f(x: str) -> str:\n    return x\n",
            "tools.py",
            "remove namespace= from @tool",
        ),
    ],
)
def test_a_bad_spec_names_the_file_and_what_to_fix(tmp_path, profile, tools, file, expected):
    directory = make_spec(tmp_path, profile=profile, tools=tools)
    with pytest.raises(ConfigurationError) as caught:
        load_spec_directory(directory)
    message = str(caught.value)
    assert message.startswith(str(directory / file))
    assert expected in message


def test_a_directory_name_that_is_no_assistant_id_is_refused(tmp_path):
    directory = make_spec(tmp_path, "two words", profile={"model": "m"})
    with pytest.raises(ConfigurationError, match="the directory name is the assistant id"):
        load_spec_directory(directory)


def test_a_missing_root_is_named(tmp_path):
    with pytest.raises(ConfigurationError, match="ASSISTANTS_DIR"):
        load_spec_directories(tmp_path / "nowhere")
