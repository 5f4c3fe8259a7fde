#!/usr/bin/env python3
"""Cost of Python stacks on reads: the /proc polling benchmark (100,000
open+read of /proc/self/status) untraced, traced without Python, traced with
the default 1-in-16 read stacks, and with a stack on every read.

Usage: sudo bench/python_read_stacks.py [--python PY] [--runs 7] [--n 100000]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKLOAD = os.path.join(ROOT, "tests/workloads/python_proc_poll.py")


def work_time(argv):
    out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    return json.loads([l for l in out.splitlines() if l.startswith("{")][0])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--python", default="/usr/bin/python3.11")
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--tracer", default=os.path.join(ROOT, "target/release/tracer"))
    args = p.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root")
    tmp = tempfile.mkdtemp(prefix="tracer-bench-")
    cmd = [args.python, WORKLOAD, str(args.n)]
    tracer = [args.tracer, "--quiet", "--format", "json", "-o", os.path.join(tmp, "r.json")]
    configs = {
        "untraced": cmd,
        "tracer --no-python": [*tracer, "--no-python", "--", *cmd],
        "tracer (read stacks 1 in 16)": [*tracer, "--", *cmd],
        "tracer --read-stacks 1": [*tracer, "--read-stacks", "1", "--", *cmd],
    }
    results = {name: [] for name in configs}
    for run in range(args.runs):
        for name, argv in configs.items():
            results[name].append(work_time(argv))
        print(f"run {run + 1}/{args.runs} done", file=sys.stderr)
    base = statistics.median(r["wall_s"] for r in results["untraced"])
    base_cpu = statistics.median(r["cpu_s"] for r in results["untraced"])
    print(f"{'configuration':32} {'wall s':>8} {'ratio':>6} {'cpu s':>8} {'ratio':>6}")
    for name, rs in results.items():
        wall = statistics.median(r["wall_s"] for r in rs)
        cpu = statistics.median(r["cpu_s"] for r in rs)
        print(f"{name:32} {wall:8.3f} {wall / base:6.3f} {cpu:8.3f} {cpu / base_cpu:6.3f}")
    print(f"(median of {args.runs} interleaved runs, {args.n} open+read, {args.python})")


if __name__ == "__main__":
    main()
