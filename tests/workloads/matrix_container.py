"""The container workload: run as pid 1 of its own pid namespace
(`unshare --pid --fork --mount --mount-proc [--root=ROOT] python3.X ...`).

With --wait it prints "ready" and waits for a line on stdin (the tracer
attaches in between), then: 37 os.read(fd, 4096) on /proc/self/stat,
~1 s of CPU in burn() (for the sampled hotspot), and one child it waits for
(wait4 inside the namespace returns the child's pid there, not the host's).
Writes what it knows, with the pids it sees (1 for itself), to argv[1].
Self-contained.
"""
import json
import os
import subprocess
import sys
import time

STAT_READS = 37


def burn(seconds):
    start = time.thread_time()
    total = 0
    while time.thread_time() - start < seconds:
        for i in range(10000):
            total += i * i % 7
    return total


def main(out, wait):
    if wait:
        print("ready", flush=True)
        sys.stdin.readline()
    fd = os.open("/proc/self/stat", os.O_RDONLY)
    for _ in range(STAT_READS):
        os.read(fd, 4096)
    os.close(fd)
    burn(1.0)
    child = subprocess.Popen(["true"])
    assert child.wait() == 0
    with open(out, "w") as f:
        json.dump(
            {
                "pid": os.getpid(),
                "stat_reads": STAT_READS,
                "child": child.pid,
                "file": os.path.abspath(__file__),
            },
            f,
        )


if __name__ == "__main__":
    main(sys.argv[1], "--wait" in sys.argv[2:])
