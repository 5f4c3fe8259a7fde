"""A parent that never waits: K Popen(["true"]) children, all from one line
of spawn(), stay zombies until the parent leaves with os._exit.

Each child's exit is confirmed by polling /proc/PID/stat for state Z (no wait
syscall: the tracer counts those), then the parent sleeps a measured while.
Writes {"parent", "children", "sleep_ns"} to argv[1].
Self-contained (it runs inside Debian roots).
"""
import json
import os
import subprocess
import sys
import time

K = 3
SLEEP_S = 0.2


def spawn(k):
    children = []
    for _ in range(k):
        children.append(subprocess.Popen(["true"]))
    return children


def state(pid):
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def main(out):
    children = spawn(K)
    for child in children:
        while state(child.pid) != "Z":
            time.sleep(0.001)
    start = time.monotonic_ns()
    time.sleep(SLEEP_S)
    slept = time.monotonic_ns() - start
    with open(out, "w") as f:
        json.dump(
            {
                "parent": os.getpid(),
                "children": [c.pid for c in children],
                "sleep_ns": slept,
            },
            f,
        )
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1])
