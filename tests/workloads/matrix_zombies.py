"""A parent that never waits: K Popen(["true"]) children, all from one line
of spawn(), stay zombies until the parent leaves with os._exit; then the
traced process, their subreaper, reaps them.

The traced process makes itself a child subreaper (prctl
PR_SET_CHILD_SUBREAPER) and forks the parent. The parent spawns the
children and confirms each exit by polling /proc/PID/stat for state Z (no
wait syscall: the tracer counts those), then sleeps a measured while and
leaves. Its zombies are handed to the subreaper, which waits for each by
pid: who reaped them is known, not left to whichever init runs the test.
With --go-on-stdin the traced process forks only once a byte comes on its
standard input (a check sends it once the tracer samples it: a fork before
the tracer has found the interpreter has no Python stack, and on a slow
VM the parent's Popen comes right after the fork).
Writes {"reaper", "parent", "children", "sleep_ns"} to argv[1].
Self-contained (it runs inside Debian roots).
"""
import ctypes
import json
import os
import subprocess
import sys
import time

K = 3
SLEEP_S = 0.2
PR_SET_CHILD_SUBREAPER = 36


def spawn(k):
    children = []
    for _ in range(k):
        children.append(subprocess.Popen(["true"]))
    return children


def state(pid):
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def parent(out):
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


def exited_0(status):
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def main(out, go_on_stdin):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
    if go_on_stdin and os.read(0, 1) == b"":
        sys.exit("no go-ahead on standard input")
    pid = os.fork()
    if pid == 0:
        parent(out)
    _, status = os.waitpid(pid, 0)
    assert exited_0(status), status
    with open(out) as f:
        facts = json.load(f)
    for child in facts["children"]:
        _, status = os.waitpid(child, 0)
        assert exited_0(status), status
    facts["reaper"] = os.getpid()
    with open(out, "w") as f:
        json.dump(facts, f)


if __name__ == "__main__":
    main(sys.argv[1], "--go-on-stdin" in sys.argv[2:])
