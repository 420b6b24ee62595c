"""Keep freed memory in the process instead of handing it back to the system.

glibc's malloc serves blocks above its mmap threshold (at most 32 MiB by default) with
fresh mappings and unmaps them on free. Every training or scoring step allocates
vocabulary-sized tensors (151,936 rows for the Qwen tokenizer) and frees them again,
so each step paid hundreds of thousands of page faults: on 2 CPU cores this was more
than half of stage 1's time (`devtools/bench_training.py` prints the ratio). Raising
the mmap and trim thresholds lets freed blocks be reused; the numbers computed do not
change. RANKVIDEO_KEEP_FREED_MEMORY=0 leaves the allocator as it is.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1  # from glibc's malloc.h
_M_MMAP_THRESHOLD = -3
_LIMIT = 2**31 - 1  # mallopt takes a C int


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds; False (and nothing changed) elsewhere."""
    if os.environ.get("RANKVIDEO_KEEP_FREED_MEMORY") == "0":
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):  # not glibc (macOS, musl): nothing to tune
        log.debug("no glibc mallopt (%s): allocator left as it is", name)
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, _LIMIT)) and bool(mallopt(_M_TRIM_THRESHOLD, _LIMIT))
