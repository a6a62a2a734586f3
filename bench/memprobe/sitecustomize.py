"""
Memory probe for a bench server (docs/performance.md, run 7): put this
directory on the server's PYTHONPATH with tracemalloc on and TM_SNAPSHOTS set,

    python -m bench --scenario memory-1p-idle500 --idle 500 --settle 40 \\
        --server-env PYTHONPATH=bench/memprobe --server-env PYTHONTRACEMALLOC=6 \\
        --server-env TM_SNAPSHOTS=/tmp/tm

then `touch /tmp/tm/trigger-before` (sockets not yet open) and, once they are,
`touch /tmp/tm/trigger-after`; each trigger writes snap-<pid>-<name>.pickle
there. `python bench/memprobe/compare.py before.pickle after.pickle 500`
prints the difference per socket by package.
"""

import glob
import os
import sys
import threading
import time
import tracemalloc


def take_snapshots_on_trigger(directory: str) -> None:
    taken = set()
    while True:
        time.sleep(0.3)
        for trigger in glob.glob(os.path.join(directory, "trigger-*")):
            if trigger in taken or not tracemalloc.is_tracing():
                continue
            taken.add(trigger)
            name = trigger.rsplit("-", 1)[1]
            snapshot = os.path.join(directory, f"snap-{os.getpid()}-{name}.pickle")
            tracemalloc.take_snapshot().dump(snapshot)


if os.environ.get("TM_SNAPSHOTS") and "serve" in sys.argv:
    threading.Thread(
        target=take_snapshots_on_trigger, args=(os.environ["TM_SNAPSHOTS"],), daemon=True
    ).start()
