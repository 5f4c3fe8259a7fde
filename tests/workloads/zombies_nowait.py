"""A parent that never waits: K children stay zombies until it exits.

Each child's exit is confirmed by polling /proc/PID/stat for state Z (no
wait syscall), then the parent sleeps and leaves with os._exit (so Popen's
finaliser does not reap them either). Writes {"parent", "children", "sleep_ns"}
before leaving.
"""
import json
import os
import subprocess
import sys
import time

K = 4
SLEEP_S = 1.2


def state(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


children = [subprocess.Popen(["true"]) for _ in range(K)]
for child in children:
    while state(child.pid) != "Z":
        time.sleep(0.001)
start = time.monotonic_ns()
time.sleep(SLEEP_S)
slept = time.monotonic_ns() - start

with open(sys.argv[1], "w") as out:
    json.dump(
        {"parent": os.getpid(), "children": [c.pid for c in children], "sleep_ns": slept},
        out,
    )
os._exit(0)
