"""A service with secrets, for the --web-config test.

Run as `secret_service.py FILE --password=SECRET` with another secret in
its environment: neither may appear in anything the endpoint serves.
Prints "ready PID" and waits for a line on stdin; then preads FILE (a
file whose name is sensitive, under a --redact-paths prefix) 40 times,
prints "burning" and burns CPU in `burn_cpu` until the next line on
stdin, prints "done" and waits for a line on stdin before it exits.
"""
import os
import sys
import threading

PREADS = 40

path = sys.argv[1]
assert sys.argv[2].startswith("--password=")
print(f"ready {os.getpid()}", flush=True)
sys.stdin.readline()

fd = os.open(path, os.O_RDONLY)
for _ in range(PREADS):
    os.pread(fd, 100, 0)
os.close(fd)

stop = threading.Event()


def wait_for_go():
    sys.stdin.readline()
    stop.set()


def burn_cpu():
    total = 0
    while not stop.is_set():
        total += 1
    return total


threading.Thread(target=wait_for_go, daemon=True).start()
print("burning", flush=True)
burn_cpu()
print("done", flush=True)
sys.stdin.readline()
