#!/usr/bin/env python3
"""What a process tree and a free-threaded build cost the tracer.

1. Start-up by `--pid` on a tree of N Python processes x T threads (a
   parent that forked N-1 workers, each with T-1 extra threads, all idle):
   the time from starting the tracer to its "tracing pid" line (everything
   it does before nothing is missed: load, attach, adopt every process and
   thread, sampler perf events), the tracer's open file descriptors at that
   point, and how many processes the report then lists as sampled. Next to
   the same for a single process, so the per-process share shows.
2. The sampler's own kernel time per tick (`python_sample` run_time_ns /
   run_cnt, kernel.bpf_stats_enabled) on the same CPU-bound work under a
   free-threaded build and under the GIL build of the same version.

Root only. Not a test: the figures depend on the machine.
`cargo xtask bench --suite tree` runs it with the freshly built tracer.

Usage: sudo bench/python_tree.py --tracer T [--processes 16] [--threads 4]
       [--runs 5] [--free-threaded PY] [--gil PY_CMD...]
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
sys.path.insert(0, HERE)
import python_sampling  # noqa: E402  (bpf_cost)

TREE = r"""
import os, sys, threading
processes, threads = int(sys.argv[1]), int(sys.argv[2])
stop = threading.Event()
def idle():
    stop.wait()
def run():
    extra = [threading.Thread(target=idle, daemon=True) for _ in range(threads - 1)]
    for t in extra:
        t.start()
    return extra
children = []
for _ in range(processes - 1):
    pid = os.fork()
    if pid == 0:
        run()
        sys.stdin.read()  # until the parent's stdin closes
        os._exit(0)
    children.append(pid)
run()
print("ready", os.getpid(), flush=True)
sys.stdin.read()
for pid in children:
    os.waitpid(pid, 0)
"""


def start_up(args, processes, threads):
    """(seconds to "tracing pid", tracer fds then, processes sampled)."""
    tree = subprocess.Popen(
        [args.python, "-c", TREE, str(processes), str(threads)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = tree.stdout.readline().split()
    assert line[0] == "ready", line
    pid = line[1]
    # Every process has all its threads once the parent printed "ready"?
    # The children start theirs after the fork: wait until /proc shows them.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        kids = open(f"/proc/{pid}/task/{pid}/children").read().split()
        counts = [len(os.listdir(f"/proc/{k}/task")) for k in kids]
        if len(kids) == processes - 1 and all(c == threads for c in counts):
            break
        time.sleep(0.01)  # polling /proc for the tree to be complete
    tmp = tempfile.mkdtemp(prefix="tracer-tree-")
    report = os.path.join(tmp, "r.json")
    started = time.monotonic()
    tracer = subprocess.Popen(
        [args.tracer, "--pid", pid, "--format", "json", "-o", report, "--duration", "1"],
        stderr=subprocess.PIPE, text=True)
    for err in tracer.stderr:
        if err.startswith("tracer: tracing pid"):
            break
    elapsed = time.monotonic() - started
    fds = len(os.listdir(f"/proc/{tracer.pid}/fd"))
    tracer.stderr.read()
    tracer.wait()
    tree.stdin.close()
    tree.wait()
    python = json.load(open(report))["python"]
    sampled = sum(1 for p in python["processes"] if p["status"] == "sampled")
    return elapsed, fds, sampled


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--tracer", required=True)
    p.add_argument("--python", default="/usr/bin/python3.11")
    p.add_argument("--processes", type=int, default=16)
    p.add_argument("--threads", type=int, default=4)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--rate", type=int, default=999)
    p.add_argument("--free-threaded",
                   default="/var/cache/tracer-tests/python3.13t/bin/python3.13t")
    p.add_argument("--gil", nargs="+",
                   default=["chroot", "/var/cache/tracer-tests/trixie-python3.13",
                            "/usr/bin/python3.13"])
    args = p.parse_args()

    print("## Start-up on a process tree (`--pid` on the parent)\n")
    print("| tree | median to \"tracing pid\" | tracer fds | processes sampled |")
    print("|---|---:|---:|---:|")
    for processes, threads in [(1, 1), (args.processes, args.threads)]:
        runs = [start_up(args, processes, threads) for _ in range(args.runs)]
        print(f"| {processes} process(es) x {threads} thread(s) "
              f"| {statistics.median(r[0] for r in runs) * 1000:.0f} ms "
              f"| {statistics.median(r[1] for r in runs):.0f} "
              f"| {min(r[2] for r in runs)} |")

    print(f"\n## Sampler cost per tick, free-threaded vs GIL build ({args.rate} Hz)\n")
    print("| build | µs per tick (`python_sample` run time / runs) | ticks | work CPU |")
    print("|---|---:|---:|---:|")
    workload = os.path.join(ROOT, "tests/workloads/python_bench_cpu.py")
    for name, command in [("free-threaded 3.13t", [args.free_threaded]),
                          ("GIL 3.13", args.gil)]:
        if command[0] == "chroot":
            root = command[1]
            os.makedirs(os.path.join(root, "tmp"), exist_ok=True)
            inside = "/tmp/python_bench_cpu.py"
            subprocess.run(["cp", workload, root + inside], check=True)
            cmd = [*command, "-B", inside, "60"]
        else:
            cmd = [*command, "-B", workload, "60"]
        costs = [python_sampling.bpf_cost(args, args.rate, cmd) for _ in range(args.runs)]
        costs = [c for c in costs if c]
        if not costs:
            print(f"| {name} | (no bpftool figures) | | |")
            continue
        per_tick = statistics.median(ns / max(count, 1) / 1000 for ns, count, _ in costs)
        ticks = statistics.median(count for _, count, _ in costs)
        cpu = statistics.median(c for _, _, c in costs)
        print(f"| {name} | {per_tick:.2f} | {ticks:.0f} | {cpu:.2f} s |")
    print(f"\nCommand: `sudo bench/python_tree.py --tracer {args.tracer} --processes "
          f"{args.processes} --threads {args.threads} --runs {args.runs} --rate {args.rate}`")


if __name__ == "__main__":
    main()
