"""K subprocess.Popen(["true"]) left unwaited, reaped only after a sleep.

Each child's exit is confirmed with waitid(WEXITED | WNOWAIT), which does not
reap it, so every child is a zombie for at least the measured `sleep_ns`
before Popen.wait() reaps it. Writes {"parent", "children", "sleep_ns"}.
"""
import json
import os
import subprocess
import sys
import time

K = 5
SLEEP_S = 0.5

children = [subprocess.Popen(["true"]) for _ in range(K)]
for child in children:
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)
start = time.monotonic_ns()
time.sleep(SLEEP_S)
slept = time.monotonic_ns() - start
for child in children:
    assert child.wait() == 0

with open(sys.argv[1], "w") as out:
    json.dump(
        {"parent": os.getpid(), "children": [c.pid for c in children], "sleep_ns": slept},
        out,
    )
