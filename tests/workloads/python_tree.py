"""Python process trees with known CPU time per function and process.

    python_tree.py pool OUT SECONDS fork|spawn
        multiprocessing.Pool(2): each worker runs worker_burn(SECONDS).
    python_tree.py prefork OUT SECONDS [--wait]
        A pre-fork server: the parent forks three workers (os.fork, no
        exec), each burns SECONDS of CPU in its own serve_* function and
        exits holding 64 MiB (unmapped as it exits). With
        --wait the workers are forked first, the parent prints "ready PID"
        and everyone waits for a line on stdin (a tracer attaches by --pid).
    python_tree.py other OUT SECONDS CHILD_OUT CHILD_COMMAND...
        Burns SECONDS in parent_burn, then runs CHILD_COMMAND (this file
        under another interpreter build, maybe in a chroot, with its "burn"
        arguments), which burns SECONDS in child_burn and writes CHILD_OUT
        (as this process sees it).
    python_tree.py burn OUT SECONDS
        child_burn(SECONDS) alone (the child of "other").

OUT gets {"runs": [{"pid", "function", "cpu_ns"}]}: each burn's own CPU time
(thread CPU clock) and the process that ran it.
"""

import json
import multiprocessing
import os
import subprocess
import sys
import time


def spin(seconds):
    end = time.thread_time_ns() + int(seconds * 1e9)
    n = 0
    while time.thread_time_ns() < end:
        n += 1
    return n


def measured(function, seconds):
    start = time.thread_time_ns()
    function(seconds)
    return {
        "pid": os.getpid(),
        "function": function.__name__,
        "cpu_ns": time.thread_time_ns() - start,
    }


def worker_burn(seconds):
    spin(seconds)


def serve_alpha(seconds):
    spin(seconds)


def serve_beta(seconds):
    spin(seconds)


def serve_gamma(seconds):
    spin(seconds)


def parent_burn(seconds):
    spin(seconds)


def child_burn(seconds):
    spin(seconds)


def pool_task(seconds):
    return measured(worker_burn, seconds)


def pool(method, seconds):
    multiprocessing.set_start_method(method)
    with multiprocessing.Pool(2) as workers:
        return workers.map(pool_task, [seconds, seconds])


def held_memory():
    """64 MiB written, as a server's caches: its exit unmaps them after its
    memory is gone from it (slow under emulation, and preemptible), while
    its siblings still run: a sampler must not take their stacks for its
    own, as on 5.10 it can from the page tables its CPU had loaded."""
    return bytearray(64 << 20)


def prefork(seconds, wait):
    runs = []
    children = []
    for serve in (serve_alpha, serve_beta, serve_gamma):
        reader, writer = os.pipe()
        go_reader, go_writer = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(reader)
            os.close(go_writer)
            held = held_memory()  # unmapped by its exit
            os.read(go_reader, 1)  # the parent says go
            run = measured(serve, seconds)
            os.write(writer, json.dumps(run).encode())
            os._exit(0)
        os.close(writer)
        os.close(go_reader)
        children.append((pid, reader, go_writer))
    if wait:
        print(f"ready {os.getpid()}", flush=True)
        sys.stdin.readline()
    for _, _, go in children:
        os.write(go, b"g")
        os.close(go)
    for pid, reader, _ in children:
        data = b""
        while chunk := os.read(reader, 4096):
            data += chunk
        runs.append(json.loads(data))
        os.waitpid(pid, 0)
    return runs


def other(seconds, child_out, child_command):
    runs = [measured(parent_burn, seconds)]
    subprocess.run(child_command, check=True)
    with open(child_out) as f:
        runs.extend(json.load(f)["runs"])
    return runs


def main():
    mode, out, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    if mode == "pool":
        runs = pool(sys.argv[4], seconds)
    elif mode == "prefork":
        runs = prefork(seconds, "--wait" in sys.argv[4:])
    elif mode == "other":
        runs = other(seconds, sys.argv[4], sys.argv[5:])
    elif mode == "burn":
        runs = [measured(child_burn, seconds)]
    else:
        raise SystemExit(f"unknown mode {mode}")
    with open(out, "w") as f:
        json.dump({"parent": os.getpid(), "runs": runs}, f)


if __name__ == "__main__":
    main()
