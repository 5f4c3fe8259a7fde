"""K children from one Popen line, left unwaited: the line that spawned each
zombie. Traced in attach mode: prints "ready" and waits for a line on stdin
(by then the tracer knows this thread), spawns, confirms every child has
exited without reaping it (waitid WNOWAIT: each is a zombie from then on),
then runs one more child through `subprocess.check_output`, whose caller is
five frames below the fork (check_output -> run -> Popen.__init__ ->
_execute_child), writes {"parent", "children", "line", "deep_child",
"deep_line"} to argv[1], then reaps the zombies, says "done" and waits for
a line before it exits.
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


def run_deep():
    """The child's pid, as the shell it runs prints it."""
    return int(subprocess.check_output(["/bin/sh", "-c", "echo $$"]))  # deep-line


SPAWN_LINE = line_of("# spawn-line")
DEEP_LINE = line_of("# deep-line")


print("ready", flush=True)
sys.stdin.readline()
children = spawn(K)
for child in children:
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)
deep_child = run_deep()
with open(sys.argv[1], "w") as out:
    json.dump(
        {
            "parent": os.getpid(),
            "children": [c.pid for c in children],
            "line": SPAWN_LINE,
            "deep_child": deep_child,
            "deep_line": DEEP_LINE,
        },
        out,
    )
for child in children:
    assert child.wait() == 0
# Alive until told to exit: the tracer is stopped first, so every stack it
# reports (the deep one above, forked a moment before) is read while this
# process, and its code objects, still exist.
print("done", flush=True)
sys.stdin.readline()
