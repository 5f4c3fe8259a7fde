"""A fork after Python started, without CPython's after-fork hooks, as
uWSGI and other C servers that embed libpython do: libc's fork() called
through ctypes (PyDLL keeps the GIL; os.fork would run
PyOS_AfterFork_Child). In the child every thread state still records the
parent's thread ids; only libc's own thread record holds the child's.

    embedded_fork.py FACTS FIFO CPU_SECONDS

The child prints "ready PARENT CHILD" and blocks opening FIFO; once the
test writes to it, the child burns CPU_SECONDS of CPU in `tally_rows`,
writes {"parent", "child", "cpu_ns"} to FACTS and exits; the parent
reaps it and exits, which ends the trace.
"""

import ctypes
import json
import os
import sys
import threading  # noqa: F401 (names the main thread, keyed by its pthread_t)
import time

facts_path, fifo, cpu_seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])


def tally_rows(n):
    total = 0
    for i in range(n):
        total += (i * 7) % 13
    return total


def serve():
    with open(fifo) as f:
        f.read()
    begin = time.thread_time_ns()
    end = begin + int(cpu_seconds * 1e9)
    while time.thread_time_ns() < end:
        tally_rows(20000)
    cpu_ns = time.thread_time_ns() - begin
    with open(facts_path, "w") as f:
        json.dump({"parent": os.getppid(), "child": os.getpid(), "cpu_ns": cpu_ns}, f)


os.mkfifo(fifo)
libc = ctypes.PyDLL(None)
child = libc.fork()
if child == 0:
    print("ready", os.getppid(), os.getpid(), flush=True)
    serve()
    os._exit(0)
os.waitpid(child, 0)
