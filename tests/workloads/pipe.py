"""Blocking reads versus fast ones: reads on a pipe that always block, and
reads of /proc/self/stat that never wait for anything.

usage: pipe.py OUT

1. The main thread does STAT_READS os.read(fd, 4096) on /proc/self/stat.
2. A writer thread sends MESSAGES messages of MESSAGE bytes on a pipe; the
   main thread reads each with os.read(r, MESSAGE). Before each write the
   writer waits until the main thread is *asleep inside read(r)*, as the
   kernel shows it in /proc/self/task/TID/syscall (that file names the
   syscall only when the thread is blocked, never while it runs), then sleeps
   WRITE_DELAY. So every one of the reads blocked: at least one voluntary
   context switch each, by construction rather than by timing.
   Messages are <= PIPE_BUF, so each write is atomic and each read returns
   exactly one message: MESSAGES read syscalls whatever the scheduling.

The writer's own reads of the syscall file are recorded too (they are exact:
one os.read per poll).
"""

import os
import platform
import sys
import threading
import time

import wl

STAT_READS = 2000
MESSAGES = 10
MESSAGE = 100
WRITE_DELAY = 0.030
READ_NR = {"x86_64": 0, "aarch64": 63}[platform.machine()]


def main(out):
    ex = wl.Expect()
    wl.os_reads(ex, wl.PROC_STAT, STAT_READS, 4096)

    r, w = os.pipe()
    main_tid = threading.get_native_id()
    syscall_file = f"/proc/self/task/{main_tid}/syscall"
    polls = []

    def blocked_in_read():
        fd = os.open(syscall_file, os.O_RDONLY)
        ex.opened(syscall_file)
        text = os.read(fd, 256)
        ex.read(syscall_file, 256, len(text))
        os.close(fd)
        fields = text.split()
        return (
            len(fields) > 1
            and fields[0] == str(READ_NR).encode()
            and int(fields[1], 16) == r
        )

    def writer():
        ex.extra["writer_tid"] = threading.get_native_id()
        for i in range(MESSAGES):
            n = 1
            while not blocked_in_read():
                n += 1
                time.sleep(0.001)  # poll interval of a condition, not a guess
            polls.append(n)
            time.sleep(WRITE_DELAY)
            os.write(w, bytes([65 + i]) * MESSAGE)

    thread = threading.Thread(target=writer)
    pipe_path = f"pipe:[{os.fstat(r).st_ino}]"
    thread.start()
    for _ in range(MESSAGES):
        got = len(os.read(r, MESSAGE))
        wl.check(got == MESSAGE, f"pipe read returned {got} bytes")
        ex.read(pipe_path, MESSAGE, got)
    thread.join()
    ex.describe(pipe_path, fs="pipe")
    ex.extra.update(
        main_tid=main_tid,
        pipe_path=pipe_path,
        blocked_reads=MESSAGES,
        stat_reads=STAT_READS,
        polls=polls,
    )
    ex.write(out)
    os.close(r)
    os.close(w)


if __name__ == "__main__":
    main(sys.argv[1])
