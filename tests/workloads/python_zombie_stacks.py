"""K children from one Popen line, left unwaited: the line that spawned each
zombie. Traced in attach mode: prints "ready" and waits for a line on stdin
(by then the tracer knows this thread), spawns, confirms every child has
exited without reaping it (waitid WNOWAIT: each is a zombie from then on),
writes {"parent", "children", "line"} to argv[1], then reaps them.
"""
import json
import os
import subprocess
import sys

K = 4


def line_of(marker):
    """The line of this file that ends with `marker` (read before tracing)."""
    with open(__file__) as source:
        return next(n for n, text in enumerate(source, 1) if text.rstrip().endswith(marker))


def spawn(k):
    children = []
    for _ in range(k):
        children.append(subprocess.Popen(["true"]))  # spawn-line
    return children


SPAWN_LINE = line_of("# spawn-line")


print("ready", flush=True)
sys.stdin.readline()
children = spawn(K)
for child in children:
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)
with open(sys.argv[1], "w") as out:
    json.dump(
        {"parent": os.getpid(), "children": [c.pid for c in children], "line": SPAWN_LINE},
        out,
    )
for child in children:
    assert child.wait() == 0
