"""A Python service of a node: prints "ready PID" (its pid as the host
sees it is found by the test), waits for "go" on standard input, burns
SECONDS of CPU in `burn`, prints "done", then waits for standard input to
close.

Usage: node_burn.py SECONDS"""

import os
import sys
import time

SECONDS = float(sys.argv[1])


def burn():
    end = time.thread_time() + SECONDS
    while time.thread_time() < end:
        pass


print(f"ready {os.getpid()}", flush=True)
sys.stdin.readline()
burn()
print("done", flush=True)
sys.stdin.read()
