#!/usr/bin/env python3
"""Cost of memory-growth sampling (page faults with Python stacks) on an
allocation-heavy Python loop.

Runs the fixed work of tests/workloads/python_bench_alloc.py (100,000 dicts
and 16 MiB of bytearrays built and dropped per round: ~140,000 minor faults
a second here, a third of its time in the kernel) untraced, under `tracer
--memory-sample 0` (everything but the fault sampler), under `tracer` (the
default: a sample per 256 KiB a thread faults in), under `tracer
--memory-sample 4` (a sample at every fault, the worst case), and under
`bpftrace software:minor-faults:64` with an empty action filtered to the
workload (the kernel's floor for a page-fault event with a program at the
default period). Configurations are interleaved, N runs each; it prints the
median of the work's own CPU and wall time and the ratios to untraced, as a
Markdown table, then the fault sampler's own run time per sample
(kernel.bpf_stats_enabled).

Root only. Not a test: the figures depend on the machine. `cargo xtask
bench --suite memory` runs it with the freshly built tracer.

Usage: sudo bench/memory_growth.py [--python PY] [--runs 7] [--rounds 20]
"""
import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile

from python_sampling import bpf_cost, interleaved, print_medians

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
WORKLOAD = os.path.join(ROOT, "tests/workloads/python_bench_alloc.py")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--python", default="/root/.pyenv/versions/3.11.7/bin/python3.11")
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--tracer", default=os.path.join(ROOT, "target/release/tracer"))
    args = p.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: the tracer loads kernel programs")
    if not shutil.which("bpftrace"):
        sys.exit("bpftrace not found (cargo xtask setup installs it)")
    tmp = tempfile.mkdtemp(prefix="tracer-bench-")
    cmd = [args.python, WORKLOAD, str(args.rounds)]
    out = lambda name: ["--quiet", "--format", "json", "-o", os.path.join(tmp, name)]
    configs = {
        "untraced": cmd,
        "tracer --memory-sample 0": [args.tracer, *out("a.json"), "--memory-sample", "0",
                                     "--", *cmd],
        "tracer (default: --memory-sample 256)": [args.tracer, *out("b.json"), "--", *cmd],
        "tracer --memory-sample 4 (every fault)": [args.tracer, *out("c.json"),
                                                   "--memory-sample", "4", "--", *cmd],
        "bpftrace software:minor-faults:64, empty action": [
            "bpftrace", "-q", "-e", "software:minor-faults:64 /pid == cpid/ { }",
            "-c", " ".join(cmd)],
    }
    results = interleaved(configs, args.runs)
    base_wall = statistics.median(r["wall_s"] for r in results["untraced"])
    faults = statistics.median(r["minflt"] for r in results["untraced"])
    print(f"## Memory growth sampling overhead: dicts and bytearrays x {args.rounds}\n")
    print(f"{platform.node()}, {os.cpu_count()} CPUs, kernel {platform.release()}, "
          f"load average {os.getloadavg()[0]:.2f}; python {args.python}; "
          f"{faults:,.0f} minor faults in {base_wall:.2f} s untraced\n")
    print_medians(results, args.runs)
    # The CPU sampler's rate left as it is: only the fault sampler is read.
    cost = bpf_cost(args.tracer, 99, cmd, program="memory_fault")
    if cost:
        ns, count, cpu = cost
        print(f"- `memory_fault` (kernel.bpf_stats_enabled): {ns / 1e6:.1f} ms in {count:,} "
              f"samples, {ns / max(count, 1) / 1000:.2f} µs per sample, "
              f"{100 * ns / 1e9 / cpu:.2f}% of the work's {cpu:.2f} s CPU")
    print(f"\nCommand: `sudo bench/memory_growth.py --runs {args.runs} --rounds {args.rounds}` "
          f"(tracer: {args.tracer})")


if __name__ == "__main__":
    main()
