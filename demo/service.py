#!/usr/bin/env python3
"""A small, deterministic "service" to point `tracer` at.

It does, in clearly named functions, the things people reach for a kernel
tracer to understand:

* poll_proc_status()  -- polls /proc/self/status with buffered binary line
                         reads (1 KiB read requests on procfs, CPython <= 3.13)
                         and /proc/self/stat with raw os.read(fd, 4096)
* read_config()       -- reads a regular file (this script) in text mode
* wait_on_pipe()      -- blocks in os.read() on a pipe fed by a slow thread
                         (voluntary context switches inside reads)
* signal_self()       -- sends itself SIGUSR1 and handles it in Python
* spawn_workers()     -- starts children and leaves them as zombies for a while
                         before reaping them
* burn_cpu()          -- a pure-Python hot function (recursive fib)

Every count is fixed, so two runs produce the same numbers. It runs for about
two to three seconds, prints a summary of what it did to stderr and exits 0.
`--summary-json PATH` also writes that summary as JSON (for tests).

Standard library only; Python 3.9+.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time

# How much of each thing the service does. Fixed so that counts are deterministic.
STATUS_POLLS = 200  # open + line-by-line read of /proc/self/status
STAT_POLLS = 50  # os.open + os.read(fd, 4096) + os.close of /proc/self/stat
STAT_READ_SIZE = 4096
CONFIG_READS = 20  # text-mode reads of a regular file (this script)
PIPE_MESSAGES = 10  # messages through a pipe, one every PIPE_DELAY_S
PIPE_DELAY_S = 0.05
PIPE_MESSAGE = b"tick\n\0\0\0"  # fixed size, so each os.read returns exactly one
SIGNALS_SENT = 5  # SIGUSR1 sent to ourselves
WORKERS = 3  # children spawned and left unreaped for ZOMBIE_TIME_S
WORKER_CMD = ["/bin/true"]
ZOMBIE_TIME_S = 0.3
FIB_N = 24  # burn_cpu() runs fib(FIB_N) FIB_ROUNDS times (~1 s on CPython 3.11)
FIB_ROUNDS = 130


def poll_proc_status():
    """Poll /proc/self/status (buffered, line by line) and /proc/self/stat (raw)."""
    lines = 0
    status_bytes = 0
    for _ in range(STATUS_POLLS):
        # Binary mode: a BufferedReader whose buffer size comes from st_blksize,
        # which is 1024 on procfs, so each refill is a 1 KiB read() request.
        with open("/proc/self/status", "rb") as f:
            for line in f:
                lines += 1
                status_bytes += len(line)
    stat_bytes = 0
    for _ in range(STAT_POLLS):
        fd = os.open("/proc/self/stat", os.O_RDONLY)
        try:
            stat_bytes += len(os.read(fd, STAT_READ_SIZE))
        finally:
            os.close(fd)
    return {
        "status_opens": STATUS_POLLS,
        "status_lines": lines,
        "status_bytes": status_bytes,
        "status_blksize": os.stat("/proc/self/status").st_blksize,
        "stat_opens": STAT_POLLS,
        "stat_reads": STAT_POLLS,
        "stat_read_size": STAT_READ_SIZE,
        "stat_bytes": stat_bytes,
    }


def read_config():
    """Read a regular file (this script) in text mode, like loading a config."""
    path = os.path.abspath(__file__)
    chars = 0
    for _ in range(CONFIG_READS):
        with open(path, "r", encoding="utf-8") as f:
            chars += len(f.read())
    return {
        "path": path,
        "reads": CONFIG_READS,
        "file_bytes": os.path.getsize(path),
        "chars": chars,
        "blksize": os.stat(path).st_blksize,
    }


def _pipe_writer(wfd):
    for _ in range(PIPE_MESSAGES):
        time.sleep(PIPE_DELAY_S)
        os.write(wfd, PIPE_MESSAGE)


def wait_on_pipe():
    """Block in os.read() on a pipe while another thread writes slowly."""
    rfd, wfd = os.pipe()
    writer = threading.Thread(target=_pipe_writer, args=(wfd,), name="pipe-writer")
    start = time.perf_counter()
    writer.start()
    received = 0
    try:
        for _ in range(PIPE_MESSAGES):
            # Blocks ~PIPE_DELAY_S each time: the kernel switches us out
            # (a voluntary context switch) in the middle of this read.
            data = os.read(rfd, len(PIPE_MESSAGE))
            if len(data) != len(PIPE_MESSAGE):
                raise RuntimeError("short pipe read: %r" % (data,))
            received += 1
    finally:
        writer.join()
        os.close(rfd)
        os.close(wfd)
    return {
        "messages": received,
        "blocking_reads": received,
        "read_size": len(PIPE_MESSAGE),
        "delay_ms": PIPE_DELAY_S * 1000,
        "seconds": round(time.perf_counter() - start, 3),
        "writer_thread": writer.name,
    }


def signal_self():
    """Send ourselves SIGUSR1 and handle it in a Python handler."""
    handled = []

    def on_usr1(signum, frame):
        handled.append(signum)

    previous = signal.signal(signal.SIGUSR1, on_usr1)
    try:
        for _ in range(SIGNALS_SENT):
            # os.kill() checks for pending signals before returning, so the
            # handler has run by the time it returns.
            os.kill(os.getpid(), signal.SIGUSR1)
    finally:
        signal.signal(signal.SIGUSR1, previous)
    if len(handled) != SIGNALS_SENT:
        raise RuntimeError("sent %d SIGUSR1, handled %d" % (SIGNALS_SENT, len(handled)))
    return {"signal": "SIGUSR1", "sent": SIGNALS_SENT, "handled": len(handled)}


def spawn_workers():
    """Start children, forget to wait() for a while (zombies), then reap them."""
    children = [subprocess.Popen(WORKER_CMD) for _ in range(WORKERS)]
    # No wait()/poll(): each child exits at once and stays a zombie until reaped.
    time.sleep(ZOMBIE_TIME_S)
    exit_codes = [child.wait() for child in children]
    return {
        "command": WORKER_CMD,
        "children": WORKERS,
        "pids": [child.pid for child in children],
        "exit_codes": exit_codes,
        "zombie_ms": ZOMBIE_TIME_S * 1000,
    }


def fib(n):
    if n < 2:
        return n
    return fib(n - 1) + fib(n - 2)


def burn_cpu():
    """A pure-Python hot function: fib(FIB_N), FIB_ROUNDS times."""
    start = time.perf_counter()
    total = 0
    for _ in range(FIB_ROUNDS):
        total += fib(FIB_N)
    calls_per_round = 2 * fib_value(FIB_N + 1) - 1
    return {
        "function": "fib",
        "n": FIB_N,
        "rounds": FIB_ROUNDS,
        "python_calls": FIB_ROUNDS * calls_per_round,
        "result": total,
        "seconds": round(time.perf_counter() - start, 3),
    }


def fib_value(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def main(argv):
    summary_json = None
    if len(argv) == 2 and argv[0] == "--summary-json":
        summary_json = argv[1]
    elif argv:
        sys.stderr.write("usage: service.py [--summary-json PATH]\n")
        return 2

    start = time.perf_counter()
    summary = {
        "pid": os.getpid(),
        "python": "%d.%d.%d" % sys.version_info[:3],
        "executable": sys.executable,
    }
    summary["poll_proc_status"] = poll_proc_status()
    summary["read_config"] = read_config()
    summary["wait_on_pipe"] = wait_on_pipe()
    summary["signal_self"] = signal_self()
    summary["spawn_workers"] = spawn_workers()
    summary["burn_cpu"] = burn_cpu()
    summary["seconds"] = round(time.perf_counter() - start, 3)

    p = summary["poll_proc_status"]
    c = summary["read_config"]
    w = summary["wait_on_pipe"]
    s = summary["signal_self"]
    k = summary["spawn_workers"]
    b = summary["burn_cpu"]
    out = sys.stderr
    out.write(
        "service.py (pid %d, Python %s) did:\n" % (summary["pid"], summary["python"])
    )
    out.write(
        "  poll_proc_status: %d x open+readline /proc/self/status "
        "(%d lines, %d bytes, st_blksize %d); "
        "%d x os.read(fd, %d) of /proc/self/stat (%d bytes)\n"
        % (
            p["status_opens"],
            p["status_lines"],
            p["status_bytes"],
            p["status_blksize"],
            p["stat_reads"],
            p["stat_read_size"],
            p["stat_bytes"],
        )
    )
    out.write(
        "  read_config:      %d x read of %s (%d bytes, st_blksize %d)\n"
        % (c["reads"], c["path"], c["file_bytes"], c["blksize"])
    )
    out.write(
        "  wait_on_pipe:     %d blocking os.read on a pipe, one message every %d ms (%.2f s)\n"
        % (w["blocking_reads"], w["delay_ms"], w["seconds"])
    )
    out.write(
        "  signal_self:      %d x %s sent to self, %d handled\n"
        % (s["sent"], s["signal"], s["handled"])
    )
    out.write(
        "  spawn_workers:    %d x %s (pids %s), zombies for %d ms, then reaped (exit codes %s)\n"
        % (
            k["children"],
            " ".join(k["command"]),
            ", ".join(str(pid) for pid in k["pids"]),
            k["zombie_ms"],
            k["exit_codes"],
        )
    )
    out.write(
        "  burn_cpu:         fib(%d) x %d = %d Python calls (%.2f s)\n"
        % (b["n"], b["rounds"], b["python_calls"], b["seconds"])
    )
    out.write("  total:            %.2f s\n" % summary["seconds"])
    out.flush()

    if summary_json:
        with open(summary_json, "w", encoding="utf-8") as f:
            json.dump(summary, f, indent=2, sort_keys=True)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
