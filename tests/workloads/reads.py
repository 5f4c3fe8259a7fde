"""Exact read counts: unbuffered os.read / pread / readv / preadv on procfs,
buffered binary and text reads of procfs and of regular files.

usage: reads.py OUT DATADIR
  OUT      where to write the figures (JSON, see wl.py)
  DATADIR  an existing directory on a regular filesystem for the data files
"""

import os
import sys

import wl

STAT_READS = 37  # os.read(fd, 4096) on /proc/self/stat
STATUS_OPENS = 40  # open('/proc/self/status', 'rb') + iterate lines
COMM_PREADS = 13
CMDLINE_READVS = 5
CMDLINE_PREADVS = 3
LIMITS_OPENS = 4  # text mode, open(p).read()
STATM_OPENS = 6  # text mode, iterate lines
DATA_OPENS = 3
PROC_FILES = [
    wl.PROC_STAT,
    "/proc/self/comm",
    "/proc/self/cmdline",
    "/proc/self/status",
    "/proc/self/statm",
    "/proc/self/limits",
]


def main(out, datadir):
    ex = wl.Expect()

    # Regular files, created first: the tracer names a file when it is first
    # opened and looks it up while the process still runs. 313 lines of 64
    # bytes: 20,032 bytes, not a multiple of 4096 or 8192.
    binary = os.path.join(datadir, "binary.txt")
    text = os.path.join(datadir, "text.txt")
    whole = os.path.join(datadir, "whole.txt")
    for path in (binary, text, whole):
        wl.write_data_file(ex, path, 313)
    blksize = os.stat(binary).st_blksize

    wl.os_reads(ex, wl.PROC_STAT, STAT_READS, 4096)

    wl.os_preads(ex, "/proc/self/comm", COMM_PREADS, 4096)
    wl.os_readvs(ex, "/proc/self/cmdline", CMDLINE_READVS, [100, 200])
    wl.os_readvs(ex, "/proc/self/cmdline", CMDLINE_PREADVS, [64, 64], positional=True)

    for _ in range(STATUS_OPENS):
        wl.binary_lines(ex, "/proc/self/status")
    for _ in range(STATM_OPENS):
        wl.text_lines(ex, "/proc/self/statm")
    for _ in range(LIMITS_OPENS):
        wl.text_read_all(ex, "/proc/self/limits")

    for _ in range(DATA_OPENS):
        wl.binary_lines(ex, binary)
        wl.text_lines(ex, text)
        wl.text_read_all(ex, whole)
    for path in (binary, text, whole):
        ex.describe(path, blksize=blksize)
    for path in PROC_FILES:
        ex.describe(path, fs="proc", blksize=os.stat(path).st_blksize)

    ex.extra["regular_blksize"] = blksize
    ex.write(out)


if __name__ == "__main__":
    main(*sys.argv[1:3])
