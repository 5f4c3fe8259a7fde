"""Calibrated CPU workload for the Python sampling test.

Two functions with the same loop body burn 70% and 30% of the CPU time:
`heavy` directly under `main`, `inner` under `main -> outer`. The script
measures the CPU time each really took (thread_time) and writes the shares
it knows to the JSON file given as argv[1], for the test to compare with
the tracer's report.

Usage: python_calibrated.py OUT.json [SECONDS]
"""
import json
import sys
import time


def heavy(n):
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def inner(n):
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def outer(n):
    return inner(n)


def main(out_path, seconds):
    unit = 20_000
    spent = {"heavy": 0, "inner": 0}
    start = time.thread_time_ns()
    rounds = 0
    while time.thread_time_ns() - start < seconds * 1e9:
        t0 = time.thread_time_ns()
        heavy(7 * unit)
        t1 = time.thread_time_ns()
        outer(3 * unit)
        t2 = time.thread_time_ns()
        spent["heavy"] += t1 - t0
        spent["inner"] += t2 - t1
        rounds += 1
    total = sum(spent.values())
    with open(out_path, "w") as f:
        json.dump(
            {
                "rounds": rounds,
                "cpu_ns": spent,
                "share": {k: 100.0 * v / total for k, v in spent.items()},
                "file": __file__,
            },
            f,
        )


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 3.0)
