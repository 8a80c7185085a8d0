"""How Python's cyclic garbage collector runs in a serving process: paused while the service starts, then tuned."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

# Collect the youngest generation after this many more container objects are made than freed (Python's default is
# 700). The frames, scope dicts and futures of a burst of requests in flight pass 700 over and over, and each
# collection walks them and promotes the survivors; at this threshold a serving workload seldom starts one.
GC_YOUNG_THRESHOLD = 10_000


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while the service starts, then on with everything made so far frozen
    and a youngest-generation threshold (GC_YOUNG_THRESHOLD) that a serving workload does not trip at every burst.

    Importing TensorFlow and loading the model allocate hundreds of thousands of long-lived objects. With the
    collector running, it walks them again and again as they pile up, which slows the start; afterwards every full
    collection would walk them all with the GIL held, a latency spike for every request in flight. Frozen, the
    collector skips them. No gc.collect() first: it would cost that time at every start, to free a little start-up
    garbage.
    """
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
        gc.enable()


def collect_retired() -> None:
    """Free a retired version's reference cycles now, not at some later full collection. Versions loaded after
    start-up are not frozen: a loaded SavedModel is a few thousand tracked objects, which a full collection walks
    in milliseconds, whereas unfreezing would make it walk TensorFlow's start-up objects too (a pause of most of a
    second with the GIL held, in the middle of a swap), and frozen objects are never collected at all."""
    gc.collect()
