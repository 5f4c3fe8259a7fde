#!/usr/bin/env python3
"""What native frames on fork stacks cost each fork: a Python process forks
N children (`os.fork()`, the child `os._exit(0)`, the parent `waitpid`),
untraced, under `tracer --pid --native=off` and under `tracer --pid`
(native frames, the default; interleaved runs). The tracer attaches
before the loop starts (with native frames, once the kernel has the
process's mappings), so every fork is traced.

Two figures per configuration, medians over the runs:
- the loop's own wall time per fork (the workload times it);
- the run time of the tracer's `sched_process_fork` program over the loop
  (`kernel.bpf_stats_enabled`, turned on for the run and restored),
  divided by N: the program also runs, and returns at once, for every
  other fork on the host during the loop, which this includes.

Root only. Not a test: the figures depend on the machine.

Usage: sudo bench/native_fork_cost.py --tracer target/release/tracer
           [--python /usr/bin/python3.11] [--forks 2000] [--runs 5]
"""
import argparse
import json
import statistics
import subprocess
import sys
import tempfile

WORKLOAD = r"""
import os, sys, time
n = int(sys.argv[1])
print(f"ready {os.getpid()}", flush=True)
sys.stdin.readline()
start = time.perf_counter()
for _ in range(n):
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
print(f"took {time.perf_counter() - start}", flush=True)
sys.stdin.readline()
"""


def fork_programs():
    """id -> (run_time_ns, run_cnt) of every sched_process_fork program
    loaded (other tracers' too: ours is the one its start added)."""
    progs = json.loads(
        subprocess.run(
            ["bpftool", "prog", "show", "--json"], capture_output=True, check=True
        ).stdout
    )
    return {
        p["id"]: (p.get("run_time_ns", 0), p.get("run_cnt", 0))
        for p in progs
        if p.get("name") == "sched_process_fork"
    }


def one_run(args, extra):
    work = subprocess.Popen(
        [args.python, "-c", WORKLOAD, str(args.forks)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    ready = work.stdout.readline().split()
    assert ready[0] == "ready", ready
    tracer = None
    if extra is not None:
        others = fork_programs()
        out = tempfile.NamedTemporaryFile(suffix=".json")
        tracer = subprocess.Popen(
            [args.tracer, "-v", "--format", "json", "-o", out.name]
            + ["--pid", ready[1]]
            + extra,
            stderr=subprocess.PIPE,
            text=True,
        )
        want = ["tracer: tracing"]
        if "--native=off" not in extra:
            want.append(f"pid {ready[1]}: native mappings published")
        while want:
            line = tracer.stderr.readline()
            if not line:
                raise SystemExit("the tracer ended before tracing")
            want = [w for w in want if w not in line]
        # (A program loaded for a moment, by the tracer's checks or by
        # another tracer starting, is gone by the end: those kept count.)
        before = {i: t for i, (t, _) in fork_programs().items() if i not in others}
    work.stdin.write("go\n")
    work.stdin.flush()
    took = float(work.stdout.readline().split()[1])
    program_ns = None
    if tracer is not None:
        after = fork_programs()
        kept = [i for i in before if i in after]
        if len(kept) != 1:
            raise SystemExit(f"not one sched_process_fork program of this tracer: {kept}")
        program_ns = (after[kept[0]][0] - before[kept[0]]) / args.forks
        tracer.send_signal(2)
        tracer.communicate()
    work.stdin.write("exit\n")
    work.stdin.flush()
    work.wait()
    return took / args.forks * 1e6, program_ns


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tracer", required=True)
    parser.add_argument("--python", default="/usr/bin/python3.11")
    parser.add_argument("--forks", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    configs = {"untraced": None, "tracer --native=off": ["--native=off"], "tracer": []}
    results = {name: [] for name in configs}
    with open("/proc/sys/kernel/bpf_stats_enabled") as f:
        stats_were = f.read().strip()
    with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
        f.write("1")
    try:
        for _ in range(args.runs):
            for name, extra in configs.items():
                results[name].append(one_run(args, extra))
    finally:
        with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
            f.write(stats_were)
    base = statistics.median(r[0] for r in results["untraced"])
    print(f"{args.forks} forks x {args.runs} runs, {args.python}")
    print("| configuration | loop per fork | vs untraced | sched_process_fork per fork |")
    print("|---|---:|---:|---:|")
    for name, runs in results.items():
        wall = statistics.median(r[0] for r in runs)
        prog = [r[1] for r in runs if r[1] is not None]
        prog_text = f"{statistics.median(prog) / 1000:.2f} us" if prog else "-"
        print(f"| {name} | {wall:.1f} us | {wall / base:.3f} | {prog_text} |")


if __name__ == "__main__":
    sys.exit(main())
