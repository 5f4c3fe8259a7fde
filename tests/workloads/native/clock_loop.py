"""Reads the clock in a tight loop: `time.monotonic()` and `time.time()`
are `clock_gettime` in libc, which runs the vDSO's code, so many samples
interrupt a vDSO function, and the native stack goes on through libc and
the interpreter only if the vDSO is unwound too. A fixed number of calls,
whatever the clock says: it ends when done.

Usage: clock_loop.py [CALLS]"""

import sys
import time


def clock_loop(calls):
    total = 0.0
    for _ in range(calls):
        total += time.monotonic()
        total += time.time()
    return total


if __name__ == "__main__":
    calls = int(sys.argv[1]) if len(sys.argv) > 1 else 2_000_000
    clock_loop(calls)
    print(calls)
