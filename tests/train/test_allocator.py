"""Freed memory is kept for reuse: repeated large allocations stop faulting in fresh pages."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import resource, sys, torch
from mtpeft.train.allocator import keep_freed_memory
took = keep_freed_memory() if sys.argv[1] == "keep" else False
for _ in range(10):  # 64 MB each, above glibc's largest dynamic mmap threshold; the heap settles in the first
    torch.ones(16 << 20)  # few (1 to 6 of them fault in fresh pages, varying from process to process)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    torch.ones(16 << 20)
print(took, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def page_faults(mode: str) -> tuple[bool, int]:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True).stdout
    took, faults = out.split()
    return took == "True", int(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc settings")
def test_kept_memory_is_reused_instead_of_faulted_in_again() -> None:
    took, kept = page_faults("keep")
    if not took:
        pytest.skip("the C library is not glibc")
    _, default = page_faults("default")
    pages = 10 * (64 << 20) // 4096
    assert default > pages // 2  # every allocation maps and faults in fresh pages
    assert kept < pages // 5  # once settled, the same pages are reused


RELEASE_PROBE = """
import psutil, torch
from mtpeft.train.allocator import keep_freed_memory, release_freed_memory
keep_freed_memory()
rss = lambda: psutil.Process().memory_info().rss >> 20
block = torch.ones(64 << 20)  # 256 MB from the heap, then freed: kept
del block
kept = rss()
released = release_freed_memory()
print(released, kept - rss())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc settings")
def test_released_memory_goes_back_to_the_system() -> None:
    out = subprocess.run([sys.executable, "-c", RELEASE_PROBE], capture_output=True, text=True, check=True).stdout
    released, freed_mb = out.split()
    if released == "False" and int(freed_mb) == 0:
        pytest.skip("the C library is not glibc")
    assert int(freed_mb) > 200  # the kept 256 MB left the process
