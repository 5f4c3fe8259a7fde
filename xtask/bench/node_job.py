"""The CPU-bound job of `cargo xtask bench --suite node`: prints "ready",
waits for a line on standard input (the sampler under test is attached by
then), computes fib(24) ROUNDS times and prints one JSON line, the wall and
CPU seconds of that work alone (start-up and attach left out).

Usage: node_job.py ROUNDS
"""
import json
import sys
import time


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def main():
    rounds = int(sys.argv[1])
    print("ready", flush=True)
    sys.stdin.readline()
    w0, c0 = time.perf_counter(), time.process_time()
    for _ in range(rounds):
        fib(24)
    w1, c1 = time.perf_counter(), time.process_time()
    print(json.dumps({"wall_s": w1 - w0, "cpu_s": c1 - c0}), flush=True)


if __name__ == "__main__":
    main()
