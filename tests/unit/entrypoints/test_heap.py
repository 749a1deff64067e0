"""The serving process's garbage collector: start-up heap frozen, young generation larger."""

from __future__ import annotations

import subprocess
import sys

# In a process of its own: freezing the test runner's heap would keep its garbage for good.
_PROBE = """
import gc
from assistant_service.entrypoints.heap import YOUNG_THRESHOLD, settle_heap
before = gc.get_freeze_count()
settle_heap()
print(gc.get_freeze_count() > before, gc.get_threshold()[0] == YOUNG_THRESHOLD)
"""


def test_settle_heap_freezes_what_start_up_built_and_collects_young_objects_less_often():
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    # Something may have frozen objects before (a .pth hook of the environment, say).
    assert done.stdout.split() == ["True", "True"]
