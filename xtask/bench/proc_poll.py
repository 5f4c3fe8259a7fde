#!/usr/bin/env python3
"""Benchmark workload for `cargo xtask bench`: poll /proc/self/status.

Each iteration opens /proc/self/status in binary mode, reads all of it and
closes it (openat + fstat/ioctl/lseek + a few read + close syscalls).

  proc_poll.py [--iterations N] [--elapsed-file PATH]
      runs N iterations, then appends the loop's own wall time in seconds
      (time.perf_counter around the loop, so no interpreter or tracer start-up)
      to PATH and prints it to stderr.
  proc_poll.py --seconds S [--ready]
      polls in a tight loop for S seconds or until SIGTERM (a long-running
      process to attach to), then prints "polls N seconds T" to stderr; with
      --ready, prints "ready" on stdout once polling has started.

Standard library only; Python 3.9+.
"""

import argparse
import signal
import sys
import time

PATH = "/proc/self/status"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=100_000)
    ap.add_argument("--elapsed-file")
    ap.add_argument("--seconds", type=float)
    ap.add_argument("--ready", action="store_true")
    args = ap.parse_args()

    if args.seconds is not None:
        stop = []
        signal.signal(signal.SIGTERM, lambda signum, frame: stop.append(signum))
        start = time.monotonic()
        deadline = start + args.seconds
        polls = 0
        while not stop:
            for _ in range(1000):
                with open(PATH, "rb") as f:
                    f.read()
            polls += 1000
            if args.ready and polls == 1000:
                print("ready", flush=True)
            if time.monotonic() >= deadline:
                break
        print("polls %d seconds %.3f" % (polls, time.monotonic() - start), file=sys.stderr)
        return 0

    n = args.iterations
    start = time.perf_counter()
    for _ in range(n):
        with open(PATH, "rb") as f:
            f.read()
    elapsed = time.perf_counter() - start
    print("iterations %d elapsed %.6f s" % (n, elapsed), file=sys.stderr)
    if args.elapsed_file:
        with open(args.elapsed_file, "a", encoding="ascii") as out:
            out.write("%.9f\n" % elapsed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
