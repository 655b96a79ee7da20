"""Give a site process's memory back between requests.

Under simulation one process runs the sites in turn and then sits idle while the server fits
or other sites train; it should hold the Python runtime, torch and the federation's images
(loaded once: every site of the process reads its part of them), not the last site's models
and the allocator's caches.
"""

import ctypes
import ctypes.util
import gc

import torch

_LIBC = ctypes.util.find_library("c")
# mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def _libc_function(name: str):
    return None if _LIBC is None else getattr(ctypes.CDLL(_LIBC), name, None)


def keep_freed_memory() -> None:
    """Have glibc keep freed memory for reuse while a site trains.

    A training step frees and allocates the same tensors every time; by default glibc maps
    tensors over its dynamic threshold afresh for each allocation and returns the top of the
    heap at each free, so each step faults its memory in again, page by page, which costs
    more than a small model's arithmetic. Freed memory is still returned between requests by
    release_memory.
    """
    mallopt = _libc_function("mallopt")
    if mallopt is not None:
        mallopt(_M_MMAP_THRESHOLD, 32 << 20)
        mallopt(_M_TRIM_THRESHOLD, 1 << 30)


def release_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    # glibc keeps freed heap pages; malloc_trim returns them to the system.
    trim = _libc_function("malloc_trim")
    if trim is not None:
        trim(0)
