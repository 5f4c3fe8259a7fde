"""The churn of `cargo xtask bench --suite node`: a node where new Python
processes never stop starting. Every 20 ms (50 a second) it starts a real
CPython with `-c` and a little work, in turn:

- a sum (no import), or imports of json / re / decimal / email;
- one that exits with a non-zero code (3), one killed by SIGTERM;
- one that forks a child and reaps it only 200 ms later (a zombie inside);
- every 5th one is reaped by this script only after 1 s (a zombie here);
- every 10th one is another CPython build when `--other PY` exists (a
  shared libpython, mapped by the loader after exec), with -S (pyenv's
  site-packages would make it 4x as costly to start).

Starts are not paced by the children: they run in parallel. A start more
than 1 s late, or with 500 children alive, is skipped and counted as missed
(an overloaded machine must not turn the churn into a fork bomb). Prints
"ready", then "started N missed N" every second; on SIGTERM the totals to
stderr.

Usage: node_churn.py [--rate 50] [--python PY] [--other PY]
"""
import argparse
import os
import signal
import subprocess
import sys
import time

WORK = [
    "sum(range(20000))",
    "import json; json.dumps({'a': list(range(100))})",
    "import re; re.compile(r'(a|b)+c').match('ab' * 50 + 'c')",
    "import decimal; decimal.Decimal(1) / decimal.Decimal(7)",
    "import sys; sum(range(5000)); sys.exit(3)",
    "import email.message; email.message.Message()['x'] = 'y'",
    "import os, signal; os.kill(os.getpid(), signal.SIGTERM)",
    "import os, time\npid = os.fork()\nif pid == 0: os._exit(0)\n"
    "time.sleep(0.2); os.waitpid(pid, 0)",
]

MAX_ALIVE = 500

stop = False


def on_term(signum, frame):
    global stop
    stop = True


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rate", type=float, default=50)
    p.add_argument("--python", default="/usr/bin/python3.11")
    p.add_argument("--other", default="")
    args = p.parse_args()
    other = args.other if args.other and os.access(args.other, os.X_OK) else None
    signal.signal(signal.SIGTERM, on_term)
    print("ready", flush=True)
    period = 1.0 / args.rate
    running = []  # (Popen, not reaped before this time)
    started = missed = nonzero = late_reaped = 0
    start = time.monotonic()
    next_start = next_report = start
    while not stop:
        now = time.monotonic()
        if now - next_start > 1.0:
            behind = int((now - next_start) / period)
            missed += behind
            next_start += behind * period
        while now >= next_start:
            next_start += period
            if len(running) >= MAX_ALIVE:
                missed += 1
                continue
            argv = [args.python]
            if other and started % 10 == 9:
                argv = [other, "-S"]
            argv += ["-c", WORK[started % len(WORK)]]
            child = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
            reap_after = now + 1.0 if started % 5 == 4 else 0.0
            running.append((child, reap_after))
            started += 1
        still = []
        for child, reap_after in running:
            # Left unreaped (a zombie once it exits) until reap_after.
            if now < reap_after or child.poll() is None:
                still.append((child, reap_after))
                continue
            nonzero += child.returncode != 0
            late_reaped += reap_after > 0
        running = still
        if now >= next_report:
            print(f"started {started} missed {missed}", flush=True)
            next_report += 1.0
        time.sleep(max(0.0, min(next_start, next_report) - time.monotonic()))
    for child, _ in running:
        child.wait()
    seconds = time.monotonic() - start
    print(
        f"started {started} in {seconds:.1f} s ({started / seconds:.1f} /s), {missed} missed, "
        f"{nonzero} exited non-zero or by a signal, {late_reaped} reaped 1 s late",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
