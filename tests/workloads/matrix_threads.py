"""matrix_threads.py OUT [THREADS]: THREADS threads (100), started in
waves of 50, each waiting until its whole wave has started, then ending.
Every one ends while traced, so its scheduling row is the one the kernel
sends at the thread's last switch-out, which a one-off trace asks for on
every kernel. Each leaves a CPU asleep at least once: its exit.

Writes OUT: {"pid": PID, "threads": [tid, ...]}.
"""

import json
import os
import sys
import threading

out = sys.argv[1]
count = int(sys.argv[2]) if len(sys.argv) > 2 else 100
WAVE = 50
threading.stack_size(256 * 1024)

tids = []


def work(started, go):
    tids.append(threading.get_native_id())
    started.release()
    go.wait()


for first in range(0, count, WAVE):
    started, go = threading.Semaphore(0), threading.Event()
    wave = [
        threading.Thread(target=work, args=(started, go), name="t-%d" % i)
        for i in range(first, min(first + WAVE, count))
    ]
    for t in wave:
        t.start()
    for _ in wave:
        started.acquire()
    go.set()
    for t in wave:
        t.join()

with open(out, "w") as f:
    json.dump({"pid": os.getpid(), "threads": tids}, f)
