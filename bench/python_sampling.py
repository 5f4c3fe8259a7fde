#!/usr/bin/env python3
"""Overhead of Python stack sampling at the same rate: tracer vs py-spy vs
the kernel's own floor.

Runs the fixed work of tests/workloads/python_bench_cpu.py untraced, under
`tracer --rate HZ`, under `py-spy record --rate HZ` (blocking and
--nonblocking), and under `bpftrace profile:hz:HZ` with an empty action
filtered to the workload (the cost of the timer interrupt alone: what any
sampler at that rate pays). Configurations are interleaved, N runs each; it
prints the median of the work's own CPU time and wall time and the ratios to
untraced, as a Markdown table.

`--native`: the C-heavy work of tests/workloads/native/zlib_bench.py
(zlib's deflate under one Python function) instead, with `tracer` (native
frames unwound in the kernel: the default) next to `tracer --native=off`
(Python frames only) and `py-spy record --native` (which stops the process
to unwind it).

Several rates (`--rates 999,9999`) show the cost per tick: the overhead at
9,999 Hz is ten times the per-tick cost of 999 Hz, well above the noise of a
shared machine, so dividing it by ten gives a 999 Hz figure that noise does
not swamp.

Root only (the profilers load kernel programs / read other processes). Not a
test: the figures depend on the machine. `cargo xtask bench --suite python`
runs it with the freshly built tracer.

Usage: sudo bench/python_sampling.py [--python PY] [--rates 999] [--runs 7] [--rounds 150]
"""
import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
WORKLOAD = os.path.join(ROOT, "tests/workloads/python_bench_cpu.py")
NATIVE_WORKLOAD = os.path.join(ROOT, "tests/workloads/native/zlib_bench.py")


def work_time(argv):
    proc = subprocess.run(argv, capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith('{"wall_s"'):
            if proc.returncode != 0:
                raise RuntimeError(f"{argv} exited {proc.returncode}: {proc.stderr}")
            return json.loads(line)
    raise RuntimeError(f"no result from {argv}: {proc.stdout}{proc.stderr}")


def bpf_cost(tracer, rate, cmd, extra=(), program="python_sample"):
    """Kernel-side cost of the sampler itself: run_time_ns / run_cnt of the
    `program` (kernel.bpf_stats_enabled), last value seen before the tracer
    unloads it, against the work's CPU time."""
    stats_path = "/proc/sys/kernel/bpf_stats_enabled"
    old = open(stats_path).read().strip()
    open(stats_path, "w").write("1")
    try:
        tmp = tempfile.mkdtemp(prefix="tracer-bench-")
        proc = subprocess.Popen(
            [tracer, "--quiet", "--format", "json", "-o", os.path.join(tmp, "r.json"),
             "--rate", str(rate), *extra, "--", *cmd],
            stdout=subprocess.PIPE, text=True)
        runs = {}
        while proc.poll() is None:
            out = subprocess.run(["bpftool", "-j", "prog", "show", "name", program],
                                 capture_output=True, text=True).stdout
            try:
                progs = json.loads(out) if out.strip() else []
            except json.JSONDecodeError:
                progs = []
            if isinstance(progs, dict):
                progs = [progs]
            for prog in progs:
                if "run_time_ns" in prog:
                    runs[prog["id"]] = prog
            time.sleep(0.1)  # polling a counter, not synchronisation
        result = json.loads([l for l in proc.stdout.read().splitlines() if l.startswith("{")][0])
    finally:
        open(stats_path, "w").write(old)
    if not runs:
        return None
    ns = sum(p["run_time_ns"] for p in runs.values())
    count = sum(p["run_cnt"] for p in runs.values())
    return ns, count, result["cpu_s"]


def configurations(args, rate, cmd, tmp):
    configs = {
        f"tracer --rate {rate}": [
            args.tracer, "--quiet", "--format", "json", "-o", os.path.join(tmp, "r.json"),
            "--rate", str(rate), "--", *cmd,
        ],
    }
    if args.native:
        # Native frames are the default: Python frames only is the option.
        configs[f"tracer --native=off --rate {rate}"] = [
            args.tracer, "--quiet", "--format", "json", "-o", os.path.join(tmp, "n.json"),
            "--native=off", "--rate", str(rate), "--", *cmd,
        ]
        if shutil.which(args.py_spy):
            configs[f"py-spy record --native --rate {rate}"] = [
                args.py_spy, "record", "--native", "--rate", str(rate), "--format", "raw",
                "-o", os.path.join(tmp, "sn.txt"), "--", *cmd,
            ]
    if args.baseline:
        configs[f"tracer (baseline) --rate {rate}"] = [
            args.baseline, "--quiet", "--format", "json", "-o", os.path.join(tmp, "b.json"),
            "--rate", str(rate), "--", *cmd,
        ]
    if shutil.which(args.py_spy) and not args.native:
        configs[f"py-spy record --rate {rate}"] = [
            args.py_spy, "record", "--rate", str(rate), "--format", "raw",
            "-o", os.path.join(tmp, "s.txt"), "--", *cmd,
        ]
        configs[f"py-spy record --rate {rate} --nonblocking"] = [
            args.py_spy, "record", "--nonblocking", "--rate", str(rate), "--format", "raw",
            "-o", os.path.join(tmp, "s2.txt"), "--", *cmd,
        ]
    if shutil.which("bpftrace"):
        configs[f"bpftrace profile:hz:{rate}, empty action"] = [
            "bpftrace", "-q", "-e", f"profile:hz:{rate} /pid == cpid/ {{ }}",
            "-c", " ".join(cmd),
        ]
    return configs


def interleaved(configs, runs):
    """Each configuration once (a preflight that fails loudly before the
    long run), then `runs` interleaved rounds: the work's timings."""
    for argv in configs.values():
        work_time(argv)
    results = {name: [] for name in configs}
    for run in range(runs):
        for name, argv in configs.items():
            results[name].append(work_time(argv))
        print(f"run {run + 1}/{runs} done", file=sys.stderr)
    return results


def print_medians(results, runs):
    """The medians of the work's CPU and wall time, and their ratios to the
    `untraced` row, as a Markdown table."""
    base_wall = statistics.median(r["wall_s"] for r in results["untraced"])
    base_cpu = statistics.median(r["cpu_s"] for r in results["untraced"])
    print(f"Medians of {runs} interleaved runs of the work's own CPU time "
          "(time.process_time) and wall time (time.perf_counter), start-up excluded.\n")
    print("| configuration | CPU s | CPU vs untraced | wall s | wall vs untraced |")
    print("|---|---:|---:|---:|---:|")
    for name, rs in results.items():
        wall = statistics.median(r["wall_s"] for r in rs)
        cpu = statistics.median(r["cpu_s"] for r in rs)
        print(f"| {name} | {cpu:.3f} | {cpu / base_cpu:.3f} | {wall:.3f} | {wall / base_wall:.3f} |")
    print()


def print_per_tick(results, base_cpu, high, low):
    """The CPU each sampler costs per tick, from the highest rate (where it
    stands well above the run-to-run noise), and what that predicts at the
    lowest rate. A tick is one CPU-clock interrupt of the target."""
    print(f"Per tick, from the {high} Hz rows (CPU-time increase / ticks per "
          f"CPU second), and what that cost comes to at {low} Hz:\n")
    print(f"| sampler | µs per tick | predicted CPU increase at {low} Hz |")
    print("|---|---:|---:|")
    for name, rs in results.items():
        if not name.startswith(("tracer", "bpftrace")) or str(high) not in name:
            continue
        increase = statistics.median(r["cpu_s"] for r in rs) / base_cpu - 1
        per_tick_us = increase / high * 1e6
        print(f"| {name} | {per_tick_us:.1f} | {100 * per_tick_us * low / 1e6:.2f}% |")
    print()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--python", default="/root/.pyenv/versions/3.11.7/bin/python3.11")
    p.add_argument("--rates", default="999",
                   help="comma-separated sampling rates, e.g. 999,9999")
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--rounds", type=int, default=150)
    p.add_argument("--tracer", default=os.path.join(ROOT, "target/release/tracer"))
    p.add_argument("--baseline", help="another tracer binary, timed in the same run")
    p.add_argument("--py-spy", default="py-spy")
    p.add_argument("--native", action="store_true",
                   help="the C-heavy work: tracer (native frames, the default) next to "
                        "tracer --native=off and py-spy --native")
    args = p.parse_args()
    # Side by side or not at all: a py-spy missing is said, not skipped.
    if not shutil.which(args.py_spy):
        sys.exit(f"py-spy not found: {args.py_spy} (--py-spy PATH)")
    if os.geteuid() != 0:
        sys.exit("run as root: the profilers load kernel programs / read other processes")
    rates = [int(r) for r in args.rates.split(",")]
    tmp = tempfile.mkdtemp(prefix="tracer-bench-")
    cmd = [args.python, NATIVE_WORKLOAD if args.native else WORKLOAD, str(args.rounds)]
    configs = {"untraced": cmd}
    for rate in rates:
        configs.update(configurations(args, rate, cmd, tmp))
    results = interleaved(configs, args.runs)
    base_cpu = statistics.median(r["cpu_s"] for r in results["untraced"])
    if args.native:
        print(f"## Native frames: sampling overhead on zlib's deflate x {args.rounds}\n")
    else:
        print(f"## Python sampling overhead: fib(24) x {args.rounds}\n")
    print(f"{platform.node()}, {os.cpu_count()} CPUs, kernel {platform.release()}, "
          f"load average {os.getloadavg()[0]:.2f}; python {args.python}\n")
    print_medians(results, args.runs)
    if len(rates) > 1:
        print_per_tick(results, base_cpu, max(rates), min(rates))
    # The sampler's own run time per tick, on fib's recursion (one code
    # object, repeated) and under a chain of distinct functions (a code
    # object per frame: the per-frame work), each tracer in turn.
    tracers = [("tracer", args.tracer)] + ([("baseline", args.baseline)] if args.baseline else [])
    if args.native:
        for rate in rates:
            for label, extra in (("tracer --native=off", ["--native=off"]), ("tracer", [])):
                cost = bpf_cost(args.tracer, rate, cmd, extra)
                if cost:
                    ns, count, cpu = cost
                    print(
                        f"- {label}: `python_sample` at {rate} Hz on zlib's deflate "
                        f"(kernel.bpf_stats_enabled): {ns / 1e6:.1f} ms in {count} runs, "
                        f"{ns / max(count, 1) / 1000:.2f} µs per tick, "
                        f"{100 * ns / 1e9 / cpu:.2f}% of the work's {cpu:.2f} s CPU"
                    )
        rates = []
    for rate in rates:
        for stack, work in (("fib(24)", cmd), (f"fib(24) under 24 distinct functions", cmd + ["chain"])):
            for label, tracer in tracers:
                cost = bpf_cost(tracer, rate, work)
                if cost:
                    ns, count, cpu = cost
                    print(
                        f"- {label}: `python_sample` at {rate} Hz on {stack} "
                        f"(kernel.bpf_stats_enabled): {ns / 1e6:.1f} ms in {count} runs, "
                        f"{ns / max(count, 1) / 1000:.2f} µs per tick, "
                        f"{100 * ns / 1e9 / cpu:.2f}% of the work's {cpu:.2f} s CPU"
                    )
    native = " --native" if args.native else ""
    print(f"\nCommand: `sudo bench/python_sampling.py{native} --rates {args.rates} --runs {args.runs} "
          f"--rounds {args.rounds}` (tracer: {args.tracer})")


if __name__ == "__main__":
    main()
