"""The /proc polling benchmark: N open+read of /proc/self/status.

Prints one JSON line with the wall and CPU seconds of the loop itself.
Usage: python_proc_poll.py [N=100000]
"""
import json
import sys
import time


def poll(n):
    for _ in range(n):
        with open("/proc/self/status") as f:
            f.read()


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    w0, c0 = time.perf_counter(), time.process_time()
    poll(n)
    w1, c1 = time.perf_counter(), time.process_time()
    print(json.dumps({"wall_s": w1 - w0, "cpu_s": c1 - c0}), flush=True)
