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


def release_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    if _LIBC is not None:
        # glibc keeps freed heap pages; malloc_trim returns them to the system.
        trim = getattr(ctypes.CDLL(_LIBC), "malloc_trim", None)
        if trim is not None:
            trim(0)
