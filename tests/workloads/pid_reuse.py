"""Two CPython processes with one pid, one after the other: the first burns
0.3 s of CPU in `first_life` and is reaped; the host's next pid is then set
back (`/proc/sys/kernel/ns_last_pid`, root only) so that the second gets
the same pid and burns 0.3 s in `second_life`. Another process of the host
may take the pid first: tried again, at most 50 times. Prints
`{"pid": P, "tries": N}` (pid null when no try got it back) and exits 0.

Usage: pid_reuse.py"""

import json
import subprocess
import sys

CHILD = """
import sys, time
def burn():
    end = time.thread_time() + 0.3
    while time.thread_time() < end:
        pass
def first_life():
    burn()
def second_life():
    burn()
{name}()
"""


def run(name):
    child = subprocess.Popen([sys.executable, "-c", CHILD.format(name=name)])
    child.wait()
    assert child.returncode == 0, child.returncode
    return child.pid


def main():
    first = run("first_life")
    for tries in range(1, 51):
        with open("/proc/sys/kernel/ns_last_pid", "w") as f:
            f.write(str(first - 1))
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD.format(name="second_life")]
        )
        child.wait()
        assert child.returncode == 0, child.returncode
        if child.pid == first:
            print(json.dumps({"pid": first, "tries": tries}), flush=True)
            return
    print(json.dumps({"pid": None, "tries": 50}), flush=True)


main()
