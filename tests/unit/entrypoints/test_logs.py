"""Log formats and redaction, through the real configuration."""

from __future__ import annotations

import contextlib
import io
import json
import logging

import pytest
import structlog

from assistant_service.domain.secrets import Secret
from assistant_service.entrypoints.logs import configure_logging
from assistant_service.entrypoints.settings import LogFormat, LogLevel, Settings


@pytest.fixture
def configure():
    buffers = []

    def make(**fields) -> io.StringIO:
        buffer = io.StringIO()
        configure_logging(Settings(**fields), stream=buffer)
        buffers.append(buffer)
        return buffer

    yield make
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == "assistant_service"]:
        root.removeHandler(handler)
    root.setLevel(logging.WARNING)
    structlog.reset_defaults()


def test_keyvalue_lines_carry_the_bound_context(configure):
    buffer = configure(log_format=LogFormat.KEYVALUE)
    with structlog.contextvars.bound_contextvars(correlation_id="kv-1"):
        logging.getLogger("stdlib").info("from %s", "stdlib")
        structlog.get_logger("native").info("from structlog", count=3)
    first, second = buffer.getvalue().splitlines()
    assert first.startswith("timestamp=")
    assert "level='info'" in first
    assert "event='from stdlib'" in first
    assert "correlation_id='kv-1'" in first
    assert "count=3" in second


def test_the_level_filters_both_kinds_of_logger(configure):
    buffer = configure(logging_level=LogLevel.WARNING)
    logging.getLogger("stdlib").info("hidden")
    structlog.get_logger("native").info("hidden too")
    structlog.get_logger("native").warning("shown")
    [line] = [json.loads(line) for line in buffer.getvalue().splitlines()]
    assert line["message"] == "shown"
    assert line["severity"] == "WARNING"


def test_configuring_again_replaces_the_handler(configure):
    configure()
    buffer = configure()
    logging.getLogger("stdlib").warning("once")
    assert len(buffer.getvalue().splitlines()) == 1
    ours = [h for h in logging.getLogger().handlers if h.get_name() == "assistant_service"]
    assert len(ours) == 1


def test_nested_and_typed_secrets_never_reach_the_line(configure):
    buffer = configure()
    structlog.get_logger("native").error(
        "upstream call",
        request={"headers": {"Authorization": "Bearer abcdefghijk"}, "body": ["sk-abcdefghijkl"]},
        key=Secret("openai-api-key", "sk-real-value-123456"),
        password="hunter2",
        note=("plain", "text"),
    )
    line = json.loads(buffer.getvalue())
    text = buffer.getvalue()
    for leaked in ("abcdefghijk", "sk-abcdefghijkl", "sk-real-value-123456", "hunter2"):
        assert leaked not in text
    assert line["request"]["headers"]["Authorization"] == "[REDACTED]"
    assert line["password"] == "[REDACTED]"
    assert line["note"] == ["plain", "text"]


def test_exceptions_are_rendered_in_the_line(configure):
    buffer = configure()
    try:
        raise ValueError("boom")  # noqa: TRY301 -- a real traceback to render
    except ValueError:
        logging.getLogger("stdlib").exception("it failed")
    line = json.loads(buffer.getvalue())
    assert line["severity"] == "ERROR"
    assert "ValueError: boom" in line["exception"]


def test_the_http_clients_request_lines_are_left_out_but_not_their_warnings(configure):
    # openai.call already logs every upstream call; httpx2's INFO line repeated it.
    buffer = configure()
    logging.getLogger("httpx2").info("HTTP Request: POST http://upstream/v1/chat/completions")
    logging.getLogger("httpx2").warning("something is off")
    [line] = [json.loads(line) for line in buffer.getvalue().splitlines()]
    assert line["message"] == "something is off"


def test_a_secret_looking_field_is_redacted_every_time(configure):
    # Field names' verdicts are remembered: the second line must be judged the same.
    buffer = configure()
    for _ in range(2):
        structlog.get_logger("native").info("call", api_token="abc", route="/chat")
    lines = [json.loads(line) for line in buffer.getvalue().splitlines()]
    assert [(line["api_token"], line["route"]) for line in lines] == [("[REDACTED]", "/chat")] * 2


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def _alone_on_the_root():
    """The service's handler alone on the root logger, as in the service.

    pytest puts its own capture handler there while a test runs; with it, every
    line goes through ``logging`` and the direct path is never taken.
    """
    root = logging.getLogger()
    others = [h for h in root.handlers if h.get_name() != "assistant_service"]
    for handler in others:
        root.removeHandler(handler)
    try:
        yield
    finally:
        for handler in others:
            root.addHandler(handler)


@contextlib.contextmanager
def _records_made():
    """The stdlib records made in the block (through logging's own record factory hook)."""
    made: list[logging.LogRecord] = []
    factory = logging.getLogRecordFactory()

    def counting(*args, **kwargs) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        made.append(record)
        return record

    logging.setLogRecordFactory(counting)
    try:
        yield made
    finally:
        logging.setLogRecordFactory(factory)


def test_alone_on_the_root_a_structlog_line_makes_no_stdlib_record(configure):
    buffer = configure()
    with _alone_on_the_root(), _records_made() as made:
        structlog.get_logger("native").info("direct", count=1)
        logging.getLogger("stdlib").info("through logging")
    # The stdlib line makes its record (and ProcessorFormatter's copy); the structlog one none.
    assert {record.name for record in made} == {"stdlib"}
    direct, foreign = (json.loads(line) for line in buffer.getvalue().splitlines())
    assert (direct["message"], direct["count"]) == ("direct", 1)
    assert foreign["message"] == "through logging"


def test_a_structlog_line_is_the_same_whether_written_directly_or_through_logging(configure):
    # With another handler on the way (caplog, an application's own) the event goes
    # through logging; the line the service's handler writes is the same.
    buffer = configure()
    native = structlog.get_logger("native.child")
    other = _Collect()
    with structlog.contextvars.bound_contextvars(correlation_id="c-1"):
        with _alone_on_the_root():
            native.info("turn", count=2, api_key="sk-not-for-logs-123")
        logging.getLogger("native").addHandler(other)
        try:
            native.info("turn", count=2, api_key="sk-not-for-logs-123")
        finally:
            logging.getLogger("native").removeHandler(other)
    direct, through_logging = (json.loads(line) for line in buffer.getvalue().splitlines())
    assert direct.pop("timestamp")
    assert through_logging.pop("timestamp")
    assert direct == through_logging
    assert direct["api_key"] == "[REDACTED]"
    assert direct["correlation_id"] == "c-1"
    assert direct["logger"] == "native.child"
    assert [record.name for record in other.records] == ["native.child"]


def test_a_structlog_exception_is_rendered_on_the_direct_path(configure):
    buffer = configure()
    try:
        raise KeyError("gone")  # noqa: TRY301 -- a real traceback to render
    except KeyError:
        with _alone_on_the_root():
            structlog.get_logger("native").exception("lookup failed")
    line = json.loads(buffer.getvalue())
    assert line["severity"] == "ERROR"
    assert "KeyError: 'gone'" in line["exception"]


class _BrokenStream(io.StringIO):
    def write(self, _text: str) -> int:
        raise BrokenPipeError("the reader is gone")


def test_a_line_that_cannot_be_written_never_fails_the_code_that_logs_it(configure, capsys):
    # As with logging's own handlers: the error is reported on stderr, not raised.
    configure()
    handler = next(h for h in logging.getLogger().handlers if h.get_name() == "assistant_service")
    handler.setStream(_BrokenStream())
    with _alone_on_the_root():
        structlog.get_logger("native").info("turn", count=1)
    assert "--- Logging error ---" in capsys.readouterr().err
