"""What ran before a profile window and what ran in it, for the --serve
profile test (`/debug/pprof/profile`).

Prints "ready PID" and waits for a line on stdin; burns 0.3 s of CPU in
`before_window`, prints "before done" and waits for a line; then burns CPU
in `during_window` on a thread named "burner" (prints "burner TID") until
the next line, prints "done" and waits for a line before it exits.
"""
import os
import sys
import threading
import time

stop = threading.Event()


def before_window(seconds):
    total = 0
    end = time.process_time() + seconds
    while time.process_time() < end:
        total += 1
    return total


def during_window():
    total = 0
    while not stop.is_set():
        total += 1
    return total


def main():
    print(f"ready {os.getpid()}", flush=True)
    sys.stdin.readline()
    before_window(0.3)
    print("before done", flush=True)
    sys.stdin.readline()
    burner = threading.Thread(target=during_window, name="burner")
    burner.start()
    print(f"burner {burner.native_id}", flush=True)
    sys.stdin.readline()
    stop.set()
    burner.join()
    print("done", flush=True)
    sys.stdin.readline()


if __name__ == "__main__":
    main()
