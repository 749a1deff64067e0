"""The Firestore state store when Firestore cannot be reached."""

from __future__ import annotations

import time

import anyio
import pytest

pytest.importorskip("google.cloud.firestore")

from assistant_service.adapters.state.firestore import FirestoreStateStore
from assistant_service.domain.errors import StateStoreUnavailableError, UpstreamUnavailableError
from assistant_service.domain.leases import Lease
from assistant_service.domain.models import Conversation
from assistant_service.domain.runs import RunRecord
from support.servers import free_port

pytestmark = pytest.mark.anyio


async def test_an_unreachable_firestore_is_unavailable_within_the_timeout(monkeypatch):
    # Nothing listens there: the client would retry for up to a minute unbounded.
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", f"127.0.0.1:{free_port()}")
    store = FirestoreStateStore.from_environment("test-project", timeout=0.5)
    calls = {
        "ping": store.ping(),
        "create": store.create(Conversation.new("assistant-1")),
        "items": store.items("conv_1"),
        "acquire": store.acquire("conv_1", "run-1", 5),
        "take": store.take("conv_1"),
        "append events": store.append_events("run_1", [{"seq": 1}]),
        "wait for events": store.read_events("run_1", wait=5.0),
        "expire events": store.expire_events("run_1", 5),
        "save run": store.save_run(RunRecord("run_1", "conv_1"), 5),
        "load run": store.load_run("run_1"),
        "latest run": store.latest_run("conv_1"),
        "request cancel": store.request_cancel("run_1", 5),
        "cancel requested": store.cancel_requested("run_1"),
    }
    try:
        for name, call in calls.items():
            started = time.monotonic()
            with pytest.raises(StateStoreUnavailableError) as raised:
                await call
            assert time.monotonic() - started < 3, name
            assert isinstance(raised.value, UpstreamUnavailableError)
            assert "Firestore test-project/(default)" in raised.value.message
    finally:
        await store.aclose()


def test_ids_firestore_cannot_hold_are_refused_before_any_call(monkeypatch):
    from assistant_service.domain.errors import InvalidInputError  # noqa: PLC0415

    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", f"127.0.0.1:{free_port()}")
    store = FirestoreStateStore.from_environment("test-project")
    for bad in ("", "a/b", ".", "..", "__reserved__", "x" * 1501):
        with pytest.raises(InvalidInputError):
            store._conversation(bad)
        with pytest.raises(InvalidInputError, match="run id"):
            store._run(bad)


async def test_a_call_cancelled_from_outside_is_cancelled_not_a_value_error(monkeypatch):
    # A transaction cancelled before it began (a lease renewal its run no longer
    # needs): the client's rollback then raises a ValueError over the cancellation.
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", f"127.0.0.1:{free_port()}")
    store = FirestoreStateStore.from_environment("test-project", timeout=5)
    lease = Lease("conv_1", "run-1", 1, 5.0)
    calls = {
        "acquire": lambda: store.acquire("conv_1", "run-1", 5),
        "renew": lambda: store.renew(lease),
        "release": lambda: store.release(lease),
    }
    try:
        for name, call in calls.items():
            started = time.monotonic()
            with anyio.move_on_after(0.3) as scope:
                await call()
            assert scope.cancelled_caught, name
            assert time.monotonic() - started < 3, name
    finally:
        await store.aclose()
