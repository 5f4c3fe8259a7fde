"""A pre-fork parent and a worker it kills: what was each of the worker's
threads doing when it died?

The worker runs three threads: the main thread in `serve` (a loop that
sleeps in `select`), `waiter` blocked in `Event.wait`, and `spinner`
computing in `spin`. When all three are in place it says so on a pipe; the
parent then sends it argv[2] (default KILL) and reaps it. Writes
{"parent", "worker", "signal", "status", "serve_line", "wait_line",
"spin_line"} to argv[1].

With argv[2] = "ABRT" the worker's main thread aborts itself
(`os.abort()`, a fatal signal with the default action) instead.
"""
import json
import os
import platform
import select
import signal
import sys
import threading


def line_of(marker):
    """The line of this file that ends with `marker` (read before tracing)."""
    with open(__file__) as source:
        return next(n for n, text in enumerate(source, 1) if text.rstrip().endswith(marker))


def wait_forever(waiting, stop):
    waiting.set(); stop.wait()  # wait-line


def spin(ready):
    ready.set()
    total = 0
    while True:
        total += 1  # spin-line


def serve(ready_fd, abort):
    os.write(ready_fd, b"ready")
    if abort:
        os.abort()  # abort-line
    while True:
        select.select([], [], [], 0.05)  # serve-line


def worker(ready_fd, abort):
    waiting, stop = threading.Event(), threading.Event()
    threading.Thread(target=wait_forever, args=(waiting, stop), name="waiter", daemon=True).start()
    waiting.wait()
    spinning = threading.Event()
    threading.Thread(target=spin, args=(spinning,), name="spinner", daemon=True).start()
    spinning.wait()
    serve(ready_fd, abort)


# The syscalls `select.select` may block in, by number: x86-64's select,
# pselect6 or poll; arm64's pselect6 or ppoll (it has no select).
SELECT_NRS = {"x86_64": ("23", "270", "7"), "aarch64": ("72", "73")}[platform.machine()]


def wait_in_select(pid):
    """Until the worker's main thread is blocked in `select`, so its line is
    the serve line."""
    while True:
        with open(f"/proc/{pid}/syscall") as f:
            if f.read().split()[0] in SELECT_NRS:
                return


def main():
    out, how = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else "KILL")
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        worker(write_end, how == "ABRT")
        os._exit(0)
    os.close(write_end)
    assert os.read(read_end, 5) == b"ready"
    if how != "ABRT":
        wait_in_select(pid)
        os.kill(pid, getattr(signal, "SIG" + how))
    _, status = os.waitpid(pid, 0)
    with open(out, "w") as f:
        json.dump(
            {
                "parent": os.getpid(),
                "worker": pid,
                "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0,
                "status": status,
                "serve_line": SERVE_LINE,
                "wait_line": WAIT_LINE,
                "spin_line": SPIN_LINE,
                "abort_line": ABORT_LINE,
            },
            f,
        )


SERVE_LINE = line_of("# serve-line")
WAIT_LINE = line_of("# wait-line")
SPIN_LINE = line_of("# spin-line")
ABORT_LINE = line_of("# abort-line")
main()
