"""Per-thread sampling in attach mode: three threads burn known CPU time.

Usage: python_threads_sampling.py OUT.json SECONDS

The main thread and `before` exist before the tracer attaches; `after` is
started only once the test writes "go" on stdin, i.e. after the tracer said
it is tracing. Each then burns SECONDS of its own CPU time (thread_time) in a
function named after it, and the script writes each thread's native id and
the CPU time it measured for that burn to OUT.json.
"""
import json
import os
import sys
import threading
import time


def spin(seconds):
    """Burns `seconds` of this thread's CPU time; returns what it measured."""
    start = time.thread_time_ns()
    end = start + int(seconds * 1e9)
    total = 0
    while time.thread_time_ns() < end:
        for i in range(2000):
            total += i * i % 7
    return time.thread_time_ns() - start


def burn_before(go, seconds, out):
    out["before"] = {"tid": threading.get_native_id()}
    go.wait()
    out["before"]["cpu_ns"] = spin(seconds)


def burn_after(seconds, out):
    out["after"] = {"tid": threading.get_native_id(), "cpu_ns": spin(seconds)}


def burn_main(seconds, out):
    out["main"] = {"tid": threading.get_native_id(), "cpu_ns": spin(seconds)}


def main():
    path, seconds = sys.argv[1], float(sys.argv[2])
    out = {}
    go = threading.Event()
    before = threading.Thread(target=burn_before, args=(go, seconds, out), name="before")
    before.start()
    print(f"ready {os.getpid()}", flush=True)
    if sys.stdin.readline().strip() != "go":
        sys.exit("expected 'go' on stdin")
    after = threading.Thread(target=burn_after, args=(seconds, out), name="after")
    after.start()
    go.set()
    burn_main(seconds, out)
    before.join()
    after.join()
    with open(path, "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
