"""Fixed CPU-bound work for the sampling-overhead benchmark.

Prints one JSON line: the wall and CPU seconds the work itself took
(interpreter start-up and the profiler's attach are not included).

Usage: python_bench_cpu.py [ROUNDS] [chain]
`chain`: the same fib(24) x ROUNDS, called through CHAIN distinct functions
(a stack of that many different code objects above the recursion, where
the sampler's per-frame work shows: the recursion repeats one code object).
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


CHAIN = 24
exec(
    "".join(f"def link_{i}(n):\n    return link_{i + 1}(n)\n" for i in range(CHAIN))
    + f"def link_{CHAIN}(n):\n    return fib(n)\n"
)


def chained_work(rounds):
    total = 0
    for _ in range(rounds):
        total += link_0(24)  # noqa: F821 (made by the exec above)
    return total


if __name__ == "__main__":
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    chained = sys.argv[2:] == ["chain"]
    w0, c0 = time.perf_counter(), time.process_time()
    (chained_work if chained else work)(rounds)
    w1, c1 = time.perf_counter(), time.process_time()
    print(json.dumps({"wall_s": w1 - w0, "cpu_s": c1 - c0}), flush=True)
