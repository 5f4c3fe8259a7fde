"""The continuous-mode workload of `cargo xtask bench --suite serve`: a busy
service that never stops churning. Its main thread polls /proc/self/status
(open + read + close) without pause; every 20 ms it spawns /bin/true and
reaps it (50 short-lived processes a second, each with its own pid, files
and threads for the tracer to forget); every 100 ms it sends itself
SIGUSR1 (a Python handler). Prints "ready" once started; on SIGTERM prints
"polls N spawned N seconds T" to stderr and exits.
"""
import os
import signal
import subprocess
import sys
import time

stop = False


def on_term(signum, frame):
    global stop
    stop = True


def on_usr1(signum, frame):
    pass


def main():
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGUSR1, on_usr1)
    print("ready", flush=True)
    polls = spawned = 0
    start = time.monotonic()
    next_spawn = next_signal = start
    while not stop:
        with open("/proc/self/status") as f:
            f.read()
        polls += 1
        now = time.monotonic()
        if now >= next_spawn:
            subprocess.run(["/bin/true"])
            spawned += 1
            next_spawn = now + 0.02
        if now >= next_signal:
            os.kill(os.getpid(), signal.SIGUSR1)
            next_signal = now + 0.1
    seconds = time.monotonic() - start
    print(f"polls {polls} spawned {spawned} seconds {seconds:.1f}", file=sys.stderr)


if __name__ == "__main__":
    main()
