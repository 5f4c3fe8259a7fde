"""Runs in a podman container (tracer/tests/containers.rs) with the test's
directory DIR mounted: says "ready PID" (its pid as it sees it) on the FIFO
DIR/ready, waits for a line on the FIFO DIR/go (the tracer attaches in
between), then burns ~0.5 s of CPU in burn(), forks a child that burns
~0.2 s and waits for it, and writes what it knows to DIR/facts.json.
Self-contained.
"""
import json
import os
import sys
import time


def burn(seconds):
    start = time.thread_time()
    total = 0
    while time.thread_time() - start < seconds:
        for i in range(10000):
            total += i * i % 7
    return total


def main(directory):
    with open(os.path.join(directory, "ready"), "w") as ready:
        ready.write(f"ready {os.getpid()}\n")
    with open(os.path.join(directory, "go")) as go:
        go.readline()
    burn(0.5)
    child = os.fork()
    if child == 0:
        burn(0.2)
        os._exit(0)
    _, status = os.waitpid(child, 0)
    assert status == 0, status
    with open(os.path.join(directory, "facts.json"), "w") as f:
        json.dump({"pid": os.getpid(), "child": child}, f)


if __name__ == "__main__":
    main(sys.argv[1])
