"""The server process's garbage collector, set for many short requests on a long-lived heap."""

from __future__ import annotations

import gc

# CPython collects its youngest generation after 700 net allocations of container
# objects, about once per chat turn here, and promotes what a request still holds
# then (at 16 or 64 requests in flight, much) into the older generations, whose
# collections walk the whole heap. Collected less often, more of a request's objects
# die young. A collection of 5,000 young objects takes a few milliseconds at most.
YOUNG_THRESHOLD = 5000
OLDER_THRESHOLD = 20


def settle_heap() -> None:
    """Freeze what start-up built and collect the young generation less often.

    What a server builds before it serves (modules, the app, the SDK's clients)
    lives as long as the process: frozen (``gc.freeze``), it is no longer walked
    by every full collection. Garbage made until then is collected first. For a
    serving process only: anything frozen that later becomes cyclic garbage is
    never collected.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, OLDER_THRESHOLD, OLDER_THRESHOLD)
