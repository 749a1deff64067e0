"""The ``assistants`` and ``tools`` commands, run through argparse as the service CLI runs them."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pytest

from assistant_service.entrypoints.cli import main as cli
from assistant_service.entrypoints.cli.assistants import add_commands, main
from fakegcp.openai_assistants import FakeAssistantsApi

EXAMPLE = Path(__file__).parents[3] / "assistants" / "weather"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in ("BUCKET_ID", "CONFIG_DIR", "LLM_BACKEND", "ASSISTANTS_DIR", "PROJECT_ID"):
        monkeypatch.delenv(name, raising=False)


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_add_commands_mounts_on_any_parser():
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers())
    args = parser.parse_args(["assistants", "push", "dir", "--to", "local:x"])
    assert (args.directory, args.target) == (Path("dir"), "local:x")
    assert callable(args.handler)


def test_build_prints_the_profile_and_the_tool_schemas(capsys):
    code, out, err = run(capsys, "assistants", "build", str(EXAMPLE))
    assert (code, err) == (0, "")
    built = json.loads(out)
    assert built["profile"]["id"] == "weather"
    assert built["profile"]["tools"][0] == "weather.get_forecast"
    assert [t["name"] for t in built["tools"]] == [
        "weather__get_forecast",
        "weather__convert_temperature",
        "weather__local_time",
    ]


def test_tools_show_prints_what_the_model_receives(capsys):
    code, out, _ = run(capsys, "tools", "show", "weather", "--assistants-dir", str(EXAMPLE.parent))
    assert code == 0
    first = json.loads(out)[0]
    assert set(first) == {"type", "name", "description", "parameters", "strict"}
    assert first["type"] == "function"
    assert first["strict"] is True
    assert first["parameters"]["additionalProperties"] is False


def test_tools_show_reads_assistants_dir_from_the_environment(capsys, monkeypatch):
    monkeypatch.setenv("ASSISTANTS_DIR", str(EXAMPLE.parent))
    code, out, _ = run(capsys, "tools", "show", "weather")
    assert code == 0
    assert len(json.loads(out)) == 3


@pytest.mark.parametrize("command", ["build", "push"])
def test_an_invalid_spec_exits_2_naming_the_file_and_the_fix(capsys, tmp_path, command):
    spec = tmp_path / "weather"
    shutil.copytree(EXAMPLE, spec)
    profile = json.loads((spec / "profile.json").read_text())
    profile["tools"].append("get_rainfall")
    (spec / "profile.json").write_text(json.dumps(profile))
    target = ["--to", f"local:{tmp_path}/c"] if command == "push" else []
    code, out, err = run(capsys, "assistants", command, str(spec), *target)
    assert code == 2
    assert out == ""
    assert f"{spec}/profile.json: tools[3]: unknown tool 'get_rainfall'" in err
    assert "tools.py defines: get_forecast, convert_temperature, local_time" in err
    assert "Traceback" not in err
    assert not (tmp_path / "c").exists()


def test_push_to_a_local_directory_then_list_and_show(capsys, tmp_path):
    target = f"local:{tmp_path / 'configs'}"
    code, out, _ = run(capsys, "assistants", "push", str(EXAMPLE), "--to", target)
    assert (code, out) == (0, f"pushed weather to {target}\n")
    code, out, _ = run(capsys, "assistants", "list", "--from", target)
    assert (code, out) == (0, "weather\tgpt-5-mini\t3 tools\n")
    code, out, _ = run(capsys, "assistants", "show", "weather", "--from", target)
    assert code == 0
    assert json.loads(out)["limits"]["max_tool_rounds"] == 4


def test_show_of_an_unknown_assistant_exits_2(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("CONFIG_DIR", str(tmp_path))
    code, out, err = run(capsys, "assistants", "show", "nobody")
    assert (code, out) == (2, "")
    assert "unknown assistant: 'nobody'" in err


def test_push_to_gcs_defaults_to_bucket_id(capsys, bucket_id, monkeypatch, storage_client):
    monkeypatch.setenv("BUCKET_ID", bucket_id)
    code, out, _ = run(capsys, "assistants", "push", str(EXAMPLE))
    assert (code, out) == (0, f"pushed weather to gcs:{bucket_id}\n")
    blob = storage_client.bucket(bucket_id).blob("assistants/weather.json")
    assert json.loads(blob.download_as_bytes())["model"] == "gpt-5-mini"
    code, out, _ = run(capsys, "assistants", "list")
    assert out.startswith("weather\t")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["assistants", "list"], "pass --to local:<dir> or gcs:<bucket>, or set BUCKET_ID"),
        (["assistants", "list", "--from", "s3:bucket"], "invalid config repository 's3:bucket'"),
        (["assistants", "list", "--from", "local:"], "invalid config repository"),
    ],
)
def test_a_missing_or_bad_target_exits_2(capsys, argv, expected):
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert expected in err


def test_push_for_the_assistants_backend_creates_then_updates_the_remote_assistant(
    capsys, tmp_path, monkeypatch
):
    target = f"local:{tmp_path}"
    with FakeAssistantsApi() as api:
        monkeypatch.setenv("OPENAI_BASE_URL", api.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("LLM_BACKEND", "assistants")
        code, out, err = run(capsys, "assistants", "push", str(EXAMPLE), "--to", target)
        assert (code, err) == (0, "")
        assert out == f"pushed weather to {target} (remote assistant asst_1)\n"
        created = api.assistants["asst_1"]
        assert created["model"] == "gpt-5-mini"
        assert created["temperature"] == 0.3
        assert created["tools"][0]["function"]["name"] == "weather__get_forecast"
        assert created["tools"][0]["function"]["parameters"]["required"] == ["city", "days"]

        code, out, _ = run(capsys, "assistants", "push", str(EXAMPLE), "--to", target)
        assert out.endswith("(remote assistant asst_1)\n")
        assert [(r.method, r.path.split("?")[0]) for r in api.requests] == [
            ("GET", "/v1/assistants"),  # none pushed from this profile before
            ("POST", "/v1/assistants"),
            ("POST", "/v1/assistants/asst_1"),  # its remote_id, recorded by the first push
        ]
        code, out, _ = run(capsys, "assistants", "show", "weather", "--from", target)
        assert json.loads(out)["remote_id"] == "asst_1"


def test_a_forgotten_remote_assistant_is_created_again(capsys, tmp_path, monkeypatch):
    (tmp_path / "weather.json").write_text(
        json.dumps({"id": "weather", "model": "m", "remote_id": "asst_gone"})
    )
    with FakeAssistantsApi() as api:
        monkeypatch.setenv("OPENAI_BASE_URL", api.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        code, out, _ = run(
            capsys,
            "assistants",
            "push",
            str(EXAMPLE),
            "--to",
            f"local:{tmp_path}",
            "--backend",
            "assistants",
        )
    assert code == 0
    assert out.endswith("(remote assistant asst_1)\n")


def test_a_rejected_api_key_exits_2_without_the_key(capsys, tmp_path, monkeypatch):
    with FakeAssistantsApi() as api:
        monkeypatch.setenv("OPENAI_BASE_URL", api.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-key")
        code, out, err = run(
            capsys,
            "assistants",
            "push",
            str(EXAMPLE),
            "--to",
            f"local:{tmp_path}",
            "--backend",
            "assistants",
        )
    assert (code, out) == (2, "")
    assert "check OPENAI_API_KEY" in err
    assert "sk-wrong-key" not in err
    assert not (tmp_path / "weather.json").exists()


def test_the_service_cli_mounts_these_commands(capsys):
    code = cli.main(["assistants", "build", str(EXAMPLE)])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["profile"]["id"] == "weather"
