"""Many threads in one process: THREADS of them, named "w-0", "w-1"...;
the even ones exit, the odd ones stay parked to the end. Every thread
leaves a CPU asleep at least once (parked, or its exit), so each has at
least one voluntary context switch.

Usage: many_threads.py OUT THREADS. Prints "ready PID", waits for a line
on stdin, starts the threads in waves of WAVE (the even ones of a wave are
joined before the next: THREADS / 2 + WAVE alive at most), writes OUT
({"pid", "threads": {tid: name}, "exited": [tid...]}) and prints "done";
then parks until killed.
"""

import json
import os
import sys
import threading

out, count = sys.argv[1], int(sys.argv[2])
WAVE = 500
# 10,000 threads of the default 8 MiB stack would reserve 80 GB.
threading.stack_size(256 * 1024)

names = {}
exited = []
park = threading.Event()


def work(index, started):
    me = threading.get_native_id()
    names[me] = threading.current_thread().name
    started.release()
    if index % 2 == 0:
        exited.append(me)
        return
    park.wait()


print("ready", os.getpid(), flush=True)
sys.stdin.readline()
for first in range(0, count, WAVE):
    started = threading.Semaphore(0)
    wave = [
        threading.Thread(target=work, args=(i, started), name=f"w-{i}", daemon=True)
        for i in range(first, min(first + WAVE, count))
    ]
    for t in wave:
        t.start()
    for _ in wave:
        started.acquire()
    for i, t in enumerate(wave, first):
        if i % 2 == 0:
            t.join()

with open(out, "w") as f:
    json.dump({"pid": os.getpid(), "threads": names, "exited": exited}, f)
print("done", flush=True)
park.wait()
