"""The CLI: subcommands from modules, one-line configuration errors."""

from __future__ import annotations

import pytest

from assistant_service.entrypoints.cli import main as cli


def test_serve_is_a_subcommand_with_host_port_and_workers():
    args = cli.build_parser().parse_args(["serve", "--port", "0", "--workers", "2"])
    assert (args.host, args.port, args.workers) == (None, 0, 2)
    assert callable(args.handler)


def test_no_command_prints_help_and_fails(capsys):
    assert cli.main([]) == 2
    assert "serve" in capsys.readouterr().err


def test_bad_settings_fail_with_one_line_and_no_traceback(capsys, monkeypatch):
    # The environment is the CLI's input: setting it is how a user calls it.
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("MAX_BODY_BYTES", "lots")
    assert cli.main(["serve"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("assistant-service: invalid settings:")
    assert "MAX_BODY_BYTES" in err
    assert "PROJECT_ID" in err
    assert "Traceback" not in err


def test_every_command_module_has_add_commands():
    assert cli.COMMAND_MODULES
    for module in cli.COMMAND_MODULES:
        assert callable(module.add_commands)


@pytest.mark.parametrize("argv", [["serve", "--port", "x"], ["nope"]])
def test_argument_errors_exit_with_2(argv):
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code == 2
