"""Reads in a second thread and in a forked child.

usage: family.py OUT

1. The main thread does MAIN_READS os.read on /proc/self/stat.
2. A second thread does THREAD_READS os.read on /proc/self/statm (same
   process: the report must put them under this pid).
3. After the thread has been joined (so the fork happens in a one-thread
   process), os.fork(): the child opens /proc/self/stat itself, does
   CHILD_READS os.read on it and os._exit(0)s; the parent waitpid()s.
   The child's figures go in the result under the child's pid.
"""

import os
import sys
import threading

import wl

MAIN_READS = 11
THREAD_READS = 23
CHILD_READS = 17


def main(out):
    ex = wl.Expect()
    wl.os_reads(ex, wl.PROC_STAT, MAIN_READS, 4096)

    tids = {}

    def worker():
        tids["thread"] = threading.get_native_id()
        wl.os_reads(ex, "/proc/self/statm", THREAD_READS, 4096)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()

    child = os.fork()
    if child == 0:
        try:
            fd = os.open(wl.PROC_STAT, os.O_RDONLY)
            for _ in range(CHILD_READS):
                os.read(fd, 4096)
            os.close(fd)
        finally:
            os._exit(0)
    _, status = os.waitpid(child, 0)
    wl.check(os.waitstatus_to_exitcode(status) == 0, f"child status {status}")

    # The child's figures, recorded by the parent (the child only read).
    entry = ex.entry(wl.PROC_STAT, pid=child)
    entry.update(
        syscalls=CHILD_READS,
        opens=1,
        request_sizes={"4096": CHILD_READS},
        by_syscall={"read": CHILD_READS},
    )
    del entry["bytes"]  # the first read's size depends on the child's stat line
    ex.extra.update(
        main_tid=threading.get_native_id(),
        thread_tid=tids["thread"],
        child_pid=child,
    )
    ex.write(out)


if __name__ == "__main__":
    main(sys.argv[1])
