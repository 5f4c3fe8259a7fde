"""/proc reads whose counts the test knows exactly, on every CPython version.

* 37 os.read(fd, 4096) on one descriptor of /proc/self/stat: 37 syscalls of
  4096 bytes whatever the version.
* 40 x open("/proc/self/status", "rb") and iterate its lines: buffered. The
  request size is the version's (3.8-3.13 size the buffer from st_blksize,
  1 KiB on procfs; 3.14 uses at least 128 KiB, gh-117151), so the workload
  records only what it knows for sure: the bytes each opening returned. The
  test derives the syscall count from the request size it observed with
  strace for that version: ceil(bytes / size) + 1 (the read that sees EOF).

Self-contained (it runs inside Debian roots). Usage: matrix_proc.py OUT.json
"""
import json
import os
import sys

STAT_READS = 37
STATUS_OPENS = 40


def poll_stat():
    fd = os.open("/proc/self/stat", os.O_RDONLY)
    got = [len(os.read(fd, 4096)) for _ in range(STAT_READS)]
    os.close(fd)
    return got


def poll_status():
    sizes = []
    for _ in range(STATUS_OPENS):
        with open("/proc/self/status", "rb") as f:
            sizes.append(sum(len(line) for line in f))
    return sizes


def main(out):
    stat = poll_stat()
    status = poll_status()
    with open(out, "w") as f:
        json.dump(
            {
                "pid": os.getpid(),
                "version": sys.version.split()[0],
                "stat_reads": len(stat),
                "stat_bytes": sum(stat),
                "status_opens": len(status),
                "status_sizes": status,
                "status_blksize": os.stat("/proc/self/status").st_blksize,
            },
            f,
        )


if __name__ == "__main__":
    main(sys.argv[1])
