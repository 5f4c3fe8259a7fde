#!/usr/bin/env python3
"""What seeing Python-level signal handlers run costs C-heavy Python that
gets no signal: tests/workloads/bigint_crunch.py (big-integer arithmetic,
whose C loops call PyErr_CheckSignals a couple of times per operation)
untraced, under the tracer (a hardware watch on CPython's is_tripped: the
kernel side runs only when a signal comes) and under `tracer
--signal-check-uprobe` (a uprobe on the check functions: a trap per call,
as before the watch), on pyenv's shared 3.11 and Debian's static 3.11
(built with LTO: its checks are mostly inlined, out of the uprobe's reach).

Configurations are interleaved, N runs each; it prints the medians of the
work's own CPU and wall time, the ratios to untraced, and how often each
signal-check program ran (the report's `python.signal_checks`), as a
Markdown table.

Root only. Not a test: the figures depend on the machine. `cargo xtask
bench --suite signals` runs it with the freshly built tracer.

Usage: sudo bench/signal_checks.py [--runs 5] [--rounds 400] [--tracer PATH] [--baseline PATH]
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
WORKLOAD = os.path.join(ROOT, "tests/workloads/bigint_crunch.py")
PYTHONS = {
    "pyenv 3.11 (shared)": "/root/.pyenv/versions/3.11.7/bin/python3.11",
    "Debian 3.11 (static)": "/usr/bin/python3.11",
}


def run(argv, report=None):
    """The work's own times, and the report's signal_checks when traced."""
    proc = subprocess.run(argv, capture_output=True, text=True)
    line = next((l for l in proc.stdout.splitlines() if l.startswith('{"wall_s"')), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"{argv} exited {proc.returncode}: {proc.stdout}{proc.stderr}")
    result = json.loads(line)
    if report:
        with open(report) as f:
            # None from a tracer older than the counters (a --baseline).
            result["checks"] = json.load(f)["python"].get("signal_checks")
    return result


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--rounds", type=int, default=400)
    p.add_argument("--tracer", default=os.path.join(ROOT, "target/release/tracer"))
    p.add_argument("--baseline", help="another tracer binary, timed in the same run")
    args = p.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: the tracer loads kernel programs")
    tmp = tempfile.mkdtemp(prefix="tracer-bench-")
    configs = {}
    for label, python in PYTHONS.items():
        if not os.path.exists(python):
            print(f"{python} is missing: {label} left out", file=sys.stderr)
            continue
        cmd = [python, WORKLOAD, str(args.rounds)]
        traced = [("tracer", args.tracer, []),
                  ("tracer --signal-check-uprobe", args.tracer, ["--signal-check-uprobe"])]
        if args.baseline:
            traced.append(("tracer (baseline)", args.baseline, []))
        configs[(label, "untraced")] = (cmd, None)
        for name, tracer, extra in traced:
            report = os.path.join(tmp, f"{len(configs)}.json")
            configs[(label, name)] = (
                [tracer, "--quiet", "--format", "json", "-o", report, *extra, "--", *cmd], report)
    for argv, report in configs.values():
        run(argv, report)  # preflight: fails loudly before the long run
    results = {key: [] for key in configs}
    for i in range(args.runs):
        for key, (argv, report) in configs.items():
            results[key].append(run(argv, report))
        print(f"run {i + 1}/{args.runs} done", file=sys.stderr)
    print(f"## Signal checks: big-integer arithmetic x {args.rounds * 2000} operations, no signal\n")
    print(f"{platform.node()}, {os.cpu_count()} CPUs, kernel {platform.release()}, "
          f"load average {os.getloadavg()[0]:.2f}\n")
    print(f"Medians of {args.runs} interleaved runs of the work's own CPU time "
          "(time.process_time) and wall time (time.perf_counter), start-up excluded; "
          "the signal-check programs' runs (`python.signal_checks`) of the last run.\n")
    print("| python | configuration | CPU s | CPU vs untraced | wall s | wall vs untraced "
          "| watch hits | uprobe hits |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for label in PYTHONS:
        if (label, "untraced") not in results:
            continue
        base = results[(label, "untraced")]
        base_cpu = statistics.median(r["cpu_s"] for r in base)
        base_wall = statistics.median(r["wall_s"] for r in base)
        for (python, name), rs in results.items():
            if python != label:
                continue
            cpu = statistics.median(r["cpu_s"] for r in rs)
            wall = statistics.median(r["wall_s"] for r in rs)
            checks = rs[-1].get("checks") or {}
            hits = [f"{checks[k]:,}" if k in checks else "" for k in ("watch_hits", "uprobe_hits")]
            print(f"| {label} | {name} | {cpu:.3f} | {cpu / base_cpu:.2f}x | {wall:.3f} "
                  f"| {wall / base_wall:.2f}x | {hits[0]} | {hits[1]} |")
    print(f"\nCommand: `sudo bench/signal_checks.py --runs {args.runs} --rounds {args.rounds}` "
          f"(tracer: {args.tracer})")


if __name__ == "__main__":
    main()
