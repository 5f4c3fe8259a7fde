"""A huge page khugepaged collapses in: 511 pages no fault of ours mapped.

It maps 4 MiB of private anonymous memory, touches one page of the 2 MiB
aligned range inside it (kept from a huge page at its fault by
MADV_NOHUGEPAGE, so that page alone is mapped), then asks for huge pages
there (MADV_HUGEPAGE) and waits until khugepaged has collapsed the range
into one (its AnonHugePages in /proc/self/smaps), which maps the other 511
pages; then it faults in 1 MiB more on another line, whose samples see
those pages. Then it writes {"pid", "touch_line", "after_line",
"after_bytes", "collapsed", "huge_kib", "page"} to argv[1]. The caller
makes khugepaged scan often.
"""
import ctypes
import json
import mmap
import os
import sys
import time

HUGE = 2 << 20
AFTER = 1 << 20
WAIT_S = 120


def line_of(marker):
    """The line of this file that ends with `marker` (read before tracing)."""
    with open(__file__) as source:
        return next(n for n, text in enumerate(source, 1) if text.rstrip().endswith(marker))


def anon_huge_kib(start):
    """AnonHugePages of the mapping that holds address `start`."""
    inside = False
    with open("/proc/self/smaps") as f:
        for row in f:
            fields = row.split()
            if "-" in fields[0] and not fields[0].endswith(":"):
                low, high = (int(x, 16) for x in fields[0].split("-"))
                inside = low <= start < high
            elif inside and fields[0] == "AnonHugePages:":
                return int(fields[1])
    return 0


def main():
    out = sys.argv[1]
    touch_line, after_line = line_of("# touch-line"), line_of("# after-line")
    # What the after-line runs, run once first: a first run of code maps
    # its file pages, up to 16 a fault, which would be that line's too.
    warm = mmap.mmap(-1, mmap.PAGESIZE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    warm.madvise(mmap.MADV_NOHUGEPAGE)
    for at in range(0, mmap.PAGESIZE, mmap.PAGESIZE):
        warm[at] = 1
    region = mmap.mmap(-1, 2 * HUGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    base = ctypes.addressof(ctypes.c_char.from_buffer(region))
    offset = -base % HUGE
    region.madvise(mmap.MADV_NOHUGEPAGE, offset, HUGE)
    region[offset] = 1  # touch-line
    region.madvise(mmap.MADV_HUGEPAGE, offset, HUGE)
    deadline = time.monotonic() + WAIT_S
    # Polls the kernel's own word on the range (a state, not a time).
    while anon_huge_kib(base + offset) < HUGE >> 10 and time.monotonic() < deadline:
        time.sleep(0.05)
    huge_kib = anon_huge_kib(base + offset)
    # Then 1 MiB faulted in after it: the samples that see the collapse's
    # pages are this line's.
    after = mmap.mmap(-1, AFTER, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    after.madvise(mmap.MADV_NOHUGEPAGE)
    for at in range(0, AFTER, mmap.PAGESIZE):
        after[at] = 1  # after-line
    with open(out, "w") as f:
        json.dump({
            "pid": os.getpid(),
            "touch_line": touch_line,
            "after_line": after_line,
            "after_bytes": AFTER,
            "collapsed": huge_kib >= HUGE >> 10,
            "huge_kib": huge_kib,
            "page": mmap.PAGESIZE,
        }, f)


main()
