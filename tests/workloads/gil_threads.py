"""Threads and the GIL, for the GIL test.

Phase 1: two threads (`spin0`, `spin1`) spin in pure Python until each has
had CPU_SECONDS of CPU time: with one GIL between them each waits for it
about half of its time. Meanwhile `sleeper` is blocked in a pipe read
(released by the main thread once both spinners are done): asleep, not
waiting for the GIL.
Phase 2: `solo` spins alone for CPU_SECONDS / 2 (it holds the GIL in
nearly all its samples) while `hasher` hashes a 32 MiB buffer over and
over (hashlib drops the GIL while it hashes: on CPU, not holding it).

Writes each thread's native id and CPU time, and its own wall time, to
the JSON file given as argv[1].

Usage: gil_threads.py OUT.json [CPU_SECONDS]
"""
import hashlib
import json
import os
import sys
import threading
import time

CPU_SECONDS = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
facts = {"pid": os.getpid(), "threads": {}}


def record(start, end):
    facts["threads"][threading.current_thread().name] = {
        "tid": threading.get_native_id(),
        "cpu_ns": time.thread_time_ns(),
        "wall_ns": end - start,
    }


def spin(seconds):
    start = time.monotonic_ns()
    x = 0
    while time.thread_time() < seconds:
        x += 1
    record(start, time.monotonic_ns())


def sleeper(fd):
    start = time.monotonic_ns()
    os.read(fd, 1)
    record(start, time.monotonic_ns())


def hasher(done):
    start = time.monotonic_ns()
    buffer = bytes(32 << 20)
    while not done.is_set():
        hashlib.sha256(buffer).digest()
    record(start, time.monotonic_ns())


def run(threads):
    for t in threads:
        t.start()
    return threads


r, w = os.pipe()
asleep = run([threading.Thread(target=sleeper, args=(r,), name="sleeper")])
pair = run([threading.Thread(target=spin, args=(CPU_SECONDS,), name=f"spin{i}") for i in range(2)])
for t in pair:
    t.join()
os.write(w, b"x")
asleep[0].join()

done = threading.Event()
solo = threading.Thread(target=lambda: (spin(CPU_SECONDS / 2), done.set()), name="solo")
run([solo, threading.Thread(target=hasher, args=(done,), name="hasher")])
for t in threading.enumerate():
    if t is not threading.current_thread():
        t.join()

with open(sys.argv[1], "w") as f:
    json.dump(facts, f)
