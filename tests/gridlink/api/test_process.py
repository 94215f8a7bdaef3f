"""The serving process caps glibc's malloc arenas (unless the environment does), trims its heap."""

from __future__ import annotations

import ctypes.util
import sys

import pytest

from gridlink.api.process import fix_mmap_threshold, limit_malloc_arenas, start_heap_trimmer

glibc = pytest.mark.skipif(
    not sys.platform.startswith("linux") or ctypes.util.find_library("c") is None,
    reason="glibc only",
)


@glibc
def test_the_arenas_are_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert limit_malloc_arenas(2) is True


def test_the_environment_decides_when_it_says(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas(2) is False


MMAPPED = """
import ctypes, sys
from gridlink.api.process import fix_mmap_threshold

FIELDS = "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost"

class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in FIELDS.split()]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Info
if sys.argv[1] == "fixed":
    assert fix_mmap_threshold()
big = bytearray(4_000_000)  # mmapped; freeing it raises glibc's dynamic threshold to 4 MB
del big
before = libc.mallinfo2().hblks
buffers = [bytearray(300_000) for _ in range(10)]
print(libc.mallinfo2().hblks - before)
"""


@pytest.mark.parametrize(("mode", "mmapped"), [("fixed", 10), ("dynamic", 0)])
@glibc
def test_large_buffers_stay_mmapped_once_the_threshold_is_fixed(
    mode: str, mmapped: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess

    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    out = subprocess.run(
        [sys.executable, "-c", MMAPPED, mode], capture_output=True, text=True, check=True
    )
    assert int(out.stdout) == mmapped


def test_the_environment_decides_the_threshold_when_it_says(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    assert fix_mmap_threshold() is False


HOLES = """
import os
from gridlink.api.process import trim_heap

def rss_mb():
    with open(f"/proc/{os.getpid()}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

blocks = [bytearray(2000) for _ in range(60_000)]  # ~120 MB of malloc'd chunks
kept = blocks[::64]  # one live chunk in every ~30 pages pins the heap's top
del blocks
before = rss_mb()
released = trim_heap()
print(released, before, rss_mb())
"""


@glibc
def test_a_trim_returns_the_free_holes_of_the_heap_to_the_system() -> None:
    import subprocess

    out = subprocess.run(
        [sys.executable, "-c", HOLES], capture_output=True, text=True, check=True
    ).stdout.split()
    released, before_mb, after_mb = out[0] == "True", float(out[1]), float(out[2])
    assert released
    assert before_mb - after_mb > 60, (before_mb, after_mb)


@glibc
def test_the_trimmer_runs_on_a_daemon_thread() -> None:
    thread = start_heap_trimmer(3600.0)  # a short one would trim all through the test session
    assert thread is not None and thread.daemon and thread.is_alive()


def test_the_trimmer_refuses_a_non_positive_interval() -> None:
    with pytest.raises(ValueError, match="interval_s"):
        start_heap_trimmer(0)
