"""For `tracer --live` (tests/live.rs).

`live_view.py serve DATA`: says "ready PID", then until its standard input
closes burns CPU in `hot_function` and reads DATA (4096 bytes at a time,
os.read) between bursts.

`live_view.py fixed DATA FACTS`: a fixed run: reads DATA 200 times in 4096
bytes, forks two children that exit 3 and 4 (reaped), burns a fixed number
of iterations in `hot_function`, writes what it did to FACTS and exits 0.
"""
import json
import os
import select
import sys


def hot_function(n):
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def read_once(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        return len(os.read(fd, 4096))
    finally:
        os.close(fd)


def serve(path):
    print(f"ready {os.getpid()}", flush=True)
    while True:
        hot_function(200_000)
        read_once(path)
        ready, _, _ = select.select([sys.stdin], [], [], 0)
        if ready and not sys.stdin.readline():
            return


def fixed(path, facts):
    reads = [read_once(path) for _ in range(200)]
    children = []
    for code in (3, 4):
        pid = os.fork()
        if pid == 0:
            os._exit(code)
        children.append(pid)
    codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in children]
    hot_function(3_000_000)
    with open(facts, "w") as f:
        json.dump(
            {"pid": os.getpid(), "path": path, "reads": len(reads), "bytes": sum(reads),
             "children": children, "codes": codes},
            f,
        )


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(sys.argv[2])
    else:
        fixed(sys.argv[2], sys.argv[3])
