"""The edge's run slots: a bound on concurrent runs that reports every change."""

from __future__ import annotations

import pytest

from assistant_service.entrypoints.http.errors import OverloadedError
from assistant_service.entrypoints.http.state import RunSlots


def test_every_change_is_reported_and_a_slot_not_kept_goes_back():
    seen: list[tuple[int, int]] = []
    slots = RunSlots(2, on_change=lambda in_use, limit: seen.append((in_use, limit)))
    slots.acquire()
    with slots.held_while_starting() as claim:
        claim.keep()  # a stream or a background run releases it later
    with pytest.raises(OverloadedError):
        slots.acquire()
    slots.release()
    with pytest.raises(RuntimeError), slots.held_while_starting():
        raise RuntimeError("the run could not start")
    assert slots.active == 1
    assert seen == [(0, 2), (1, 2), (2, 2), (1, 2), (2, 2), (1, 2)]
