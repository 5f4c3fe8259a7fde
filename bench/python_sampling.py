#!/usr/bin/env python3
"""Overhead of Python stack sampling at the same rate: tracer vs py-spy.

Runs the fixed work of tests/workloads/python_bench_cpu.py untraced, under
`tracer --rate HZ`, and under `py-spy record --rate HZ`, interleaved, N times
each, and prints the median work time of each and the ratios to untraced.
Root only (both tools need it). Not a test: the figures depend on the machine.

Usage: sudo bench/python_sampling.py [--python PY] [--rate 999] [--runs 7] [--rounds 300]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
WORKLOAD = os.path.join(ROOT, "tests/workloads/python_bench_cpu.py")


def work_time(argv):
    out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"no result from {argv}: {out}")


def bpf_cost(args, cmd):
    """Kernel-side cost of the sampler itself: run_time_ns / run_cnt of the
    `python_sample` program (kernel.bpf_stats_enabled), last value seen
    before the tracer unloads it, against the work's CPU time."""
    stats_path = "/proc/sys/kernel/bpf_stats_enabled"
    old = open(stats_path).read().strip()
    open(stats_path, "w").write("1")
    try:
        tmp = tempfile.mkdtemp(prefix="tracer-bench-")
        proc = subprocess.Popen(
            [args.tracer, "--quiet", "--format", "json", "-o", os.path.join(tmp, "r.json"),
             "--rate", str(args.rate), "--", *cmd],
            stdout=subprocess.PIPE, text=True)
        last = None
        while proc.poll() is None:
            out = subprocess.run(["bpftool", "-j", "prog", "show", "name", "python_sample"],
                                 capture_output=True, text=True).stdout
            try:
                progs = json.loads(out) if out.strip() else []
            except json.JSONDecodeError:
                progs = []
            if isinstance(progs, dict):
                progs = [progs]
            for prog in progs:
                if "run_time_ns" in prog:
                    last = prog
            time.sleep(0.1)  # polling a counter, not synchronisation
        result = json.loads([l for l in proc.stdout.read().splitlines() if l.startswith("{")][0])
        report = json.load(open(os.path.join(tmp, "r.json")))["python"]
    finally:
        open(stats_path, "w").write(old)
    if not last:
        return None
    return last["run_time_ns"], last["run_cnt"], report["samples"], result["cpu_s"]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--python", default="/root/.pyenv/versions/3.11.7/bin/python3.11")
    p.add_argument("--rate", type=int, default=999)
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--rounds", type=int, default=300)
    p.add_argument("--tracer", default=os.path.join(ROOT, "target/release/tracer"))
    p.add_argument("--py-spy", default="py-spy")
    args = p.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: both profilers load kernel programs / read other processes")
    tmp = tempfile.mkdtemp(prefix="tracer-bench-")
    cmd = [args.python, WORKLOAD, str(args.rounds)]
    configs = {
        "untraced": cmd,
        f"tracer --rate {args.rate}": [
            args.tracer, "--quiet", "--format", "json", "-o", os.path.join(tmp, "r.json"),
            "--rate", str(args.rate), "--", *cmd,
        ],
        f"py-spy record --rate {args.rate}": [
            args.py_spy, "record", "--rate", str(args.rate), "--format", "raw",
            "-o", os.path.join(tmp, "s.txt"), "--", *cmd,
        ],
        f"py-spy record --rate {args.rate} --nonblocking": [
            args.py_spy, "record", "--nonblocking", "--rate", str(args.rate), "--format", "raw",
            "-o", os.path.join(tmp, "s2.txt"), "--", *cmd,
        ],
    }
    results = {name: [] for name in configs}
    for run in range(args.runs):
        for name, argv in configs.items():
            results[name].append(work_time(argv))
        print(f"run {run + 1}/{args.runs} done", file=sys.stderr)
    base_wall = statistics.median(r["wall_s"] for r in results["untraced"])
    base_cpu = statistics.median(r["cpu_s"] for r in results["untraced"])
    print(f"{'configuration':40} {'wall s':>8} {'ratio':>6} {'cpu s':>8} {'ratio':>6}")
    for name, rs in results.items():
        wall = statistics.median(r["wall_s"] for r in rs)
        cpu = statistics.median(r["cpu_s"] for r in rs)
        print(f"{name:40} {wall:8.3f} {wall / base_wall:6.3f} {cpu:8.3f} {cpu / base_cpu:6.3f}")
    print(f"(median of {args.runs} interleaved runs; python {args.python})")
    cost = bpf_cost(args, cmd)
    if cost:
        ns, runs, samples, cpu = cost
        print(
            f"python_sample BPF program: {ns / 1e6:.1f} ms in {runs} runs "
            f"({ns / max(runs, 1) / 1000:.2f} us/run, {samples} stacks of the target); "
            f"all of it charged to the work would be {100 * ns / 1e9 / cpu:.2f}% of its {cpu:.2f} s CPU"
        )


if __name__ == "__main__":
    main()
