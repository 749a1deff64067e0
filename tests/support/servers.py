"""Real servers for the tests: ``redis-server`` and the Firestore emulator, on 127.0.0.1.

Each comes as a plain context manager (a benchmark or an e2e test can start its
own) and as a session fixture. A server whose program is not installed skips
its tests on a developer's machine; under CI (``CI`` set) it fails them, so a
missing install step cannot pass as green.

To use the fixtures from a test directory, import them into its conftest.py.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import attrs
import pytest

HOST = "127.0.0.1"
FIRESTORE_PROJECT = "test-project"

# Fixtures that start real servers: tests/conftest.py gives the ``servers`` mark to
# every test that requests one (directly or through other fixtures), and tox runs
# those tests on one Python only. Name a new server fixture here.
SERVER_FIXTURES = frozenset({"redis_server", "firestore_emulator", "emulator_url"})

# Set by tests/conftest.py while a test runs: (its node id, whether it has the mark).
running_test: tuple[str, bool] | None = None


def require_servers_mark(program: str) -> None:
    """Fail a running test that starts ``program`` without the ``servers`` mark.

    Outside a pytest run (a benchmark script) there is nothing to check.
    """
    if running_test is not None and not running_test[1]:
        pytest.fail(
            f"{running_test[0]} starts {program} but has no 'servers' mark: request a fixture"
            " from support.servers.SERVER_FIXTURES, or mark it (see tests/conftest.py)",
            pytrace=False,
        )


class ServerMissingError(RuntimeError):
    """The program a server needs is not installed."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def find_program(name: str, purpose: str) -> str:
    """The path of ``name``, or ``ServerMissingError`` saying what it is for."""
    path = shutil.which(name)
    if path is None:
        raise ServerMissingError(f"{name} is not installed: {purpose}")
    return path


def skip_or_fail(error: ServerMissingError) -> NoReturn:
    """Skip on a developer's machine; under CI, fail loudly."""
    if os.environ.get("CI"):
        pytest.fail(f"{error} (CI must run these tests: install it in .ci/run)", pytrace=False)
    pytest.skip(str(error))


def _stop(process: subprocess.Popen[bytes], *, group: bool = False) -> None:
    if process.poll() is None:
        # A process group only where the server forks children of its own (gcloud does).
        if group:
            os.killpg(process.pid, signal.SIGTERM)
        else:
            process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            if group:
                os.killpg(process.pid, signal.SIGKILL)
            else:
                process.kill()
            process.wait(timeout=10)


@attrs.define
class RedisServer:
    """A ``redis-server`` on one port; it can be stopped and started again.

    Without ``data_dir`` it keeps nothing across a restart; with it, its data
    lives in an append-only file there, written at every command, and a restart
    finds it again (as a managed Redis that fails over keeps its data).
    """

    port: int = attrs.field(factory=free_port)
    password: str | None = None
    data_dir: Path | None = None
    _process: subprocess.Popen[bytes] | None = attrs.field(default=None, init=False)
    _log: Path | None = attrs.field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    @property
    def running(self) -> bool:
        """Whether it was started and not stopped since."""
        return self._process is not None

    def start(self) -> None:
        """Start the server (on the same port as before) and wait until it answers."""
        require_servers_mark("redis-server")
        program = find_program("redis-server", "the Redis state-store tests need it")
        command = [program, "--port", str(self.port), "--bind", HOST]
        command += ["--save", "", "--daemonize", "no"]
        if self.data_dir is None:
            command += ["--appendonly", "no"]
        else:
            command += ["--dir", str(self.data_dir), "--appendonly", "yes"]
            command += ["--appendfsync", "always"]
        if self.password is not None:
            command += ["--requirepass", self.password]
        descriptor, log = tempfile.mkstemp(prefix="redis-server-", suffix=".log")
        self._log = Path(log)
        with os.fdopen(descriptor, "wb") as output:
            self._process = subprocess.Popen(
                command, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + 10
        while not self._answers():
            if self._process.poll() is not None:
                self._process = None
                raise RuntimeError(f"redis-server exited:\n{self._log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("redis-server did not answer within 10 s")
            time.sleep(0.02)

    def stop(self) -> None:
        """Stop the server; its data is gone, unless it has a ``data_dir``."""
        if self._process is not None:
            _stop(self._process)
            self._process = None
        if self._log is not None:
            self._log.unlink(missing_ok=True)
            self._log = None

    def _answers(self) -> bool:
        try:
            with socket.create_connection((HOST, self.port), timeout=0.5) as connection:
                connection.sendall(b"PING\r\n")
                reply = connection.recv(64)
        except OSError:
            return False
        # Without the password the server still answers, with an error: it is up.
        return reply.startswith((b"+PONG", b"-NOAUTH"))


@contextlib.contextmanager
def running_redis(*, password: str | None = None) -> Iterator[RedisServer]:
    """A started ``RedisServer`` on a free port, stopped afterwards."""
    server = RedisServer(password=password)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def running_firestore_emulator(*, timeout: float = 90.0) -> Iterator[str]:
    """The Firestore emulator (``gcloud emulators firestore``) on a free port; yields ``host:port``.

    Set ``FIRESTORE_EMULATOR_HOST`` to it and the Firestore client talks to it.
    It keeps data in memory; tests keep apart by collection prefix.
    """
    require_servers_mark("the Firestore emulator")
    program = find_program(
        "gcloud", "the Firestore state-store tests need its Firestore emulator (and Java)"
    )
    host = f"{HOST}:{free_port()}"
    env = {
        **os.environ,
        # No prompts, no update checks: the emulator needs no network but loopback.
        "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
        "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "1",
    }
    with tempfile.TemporaryDirectory() as scratch:
        log_path = Path(scratch) / "emulator.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [program, "emulators", "firestore", "start", f"--host-port={host}"],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                # gcloud starts Java as a child: stop the whole group we started.
                start_new_session=True,
            )
        try:
            _wait_for_emulator(host, process, log_path, timeout)
            yield host
        finally:
            _stop(process, group=True)


def _wait_for_emulator(
    host: str, process: subprocess.Popen[bytes], log_path: Path, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://{host}/", timeout=1) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if process.poll() is not None:
            raise RuntimeError(f"the Firestore emulator exited:\n{log_path.read_text()[-2000:]}")
        if time.monotonic() > deadline:
            _stop(process, group=True)
            message = f"the Firestore emulator did not answer within {timeout} s"
            raise RuntimeError(f"{message}:\n{log_path.read_text()[-2000:]}")
        time.sleep(0.2)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One ``redis-server`` for the session; tests keep apart by key prefix."""
    with contextlib.ExitStack() as stack:
        try:
            server = stack.enter_context(running_redis())
        except ServerMissingError as error:
            skip_or_fail(error)
        yield server


@pytest.fixture(scope="session")
def firestore_emulator() -> Iterator[str]:
    """One Firestore emulator for the session (``host:port``); tests keep apart by prefix."""
    with contextlib.ExitStack() as stack:
        try:
            host = stack.enter_context(running_firestore_emulator())
        except ServerMissingError as error:
            skip_or_fail(error)
        yield host
