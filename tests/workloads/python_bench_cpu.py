"""Fixed CPU-bound work for the sampling-overhead benchmark.

Prints one JSON line: the wall and CPU seconds the work itself took
(interpreter start-up and the profiler's attach are not included).
"""
import json
import sys
import time


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def work(rounds):
    total = 0
    for _ in range(rounds):
        total += fib(24)
    return total


if __name__ == "__main__":
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    w0, c0 = time.perf_counter(), time.process_time()
    work(rounds)
    w1, c1 = time.perf_counter(), time.process_time()
    print(json.dumps({"wall_s": w1 - w0, "cpu_s": c1 - c0}), flush=True)
