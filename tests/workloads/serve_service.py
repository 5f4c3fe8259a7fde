"""A service whose figures are known, for the --serve test (Prometheus).

Prints "ready PID" and waits for a line on stdin; then preads
/proc/self/stat 50 times with a 333-byte request, writes 40 lines of 8
bytes to a log file with an fsync every 10, sends itself SIGUSR1
3 times (a Python handler runs), spawns /bin/true and reaps it at least
200 ms after its exit, spawns another /bin/true and leaves it a zombie,
burns CPU in `burn` for 0.3 s, prints "done FACTS" (JSON) and waits for a
line on stdin before it exits.
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

PREADS = 50
PREAD_SIZE = 333
LOG_WRITES, SYNC_EVERY = 40, 10
USR1 = 3

handled = []


def on_usr1(signum, frame):
    handled.append(signum)


def poll_stat():
    fd = os.open("/proc/self/stat", os.O_RDONLY)
    for _ in range(PREADS):
        os.pread(fd, PREAD_SIZE, 0)
    os.close(fd)


def write_log():
    path = os.path.join(tempfile.mkdtemp(prefix="serve-log-"), "app.log")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    for i in range(LOG_WRITES):
        os.write(fd, b"line %02d\n" % i)
        if (i + 1) % SYNC_EVERY == 0:
            os.fsync(fd)
    os.close(fd)
    return path


def burn(seconds):
    total = 0
    end = time.process_time() + seconds
    while time.process_time() < end:
        total += 1
    return total


def main():
    signal.signal(signal.SIGUSR1, on_usr1)
    print(f"ready {os.getpid()}", flush=True)
    sys.stdin.readline()
    poll_stat()
    log = write_log()
    for _ in range(USR1):
        os.kill(os.getpid(), signal.SIGUSR1)
    while len(handled) < USR1:
        time.sleep(0.001)
    reaped = subprocess.Popen(["/bin/true"])
    # A zombie from its exit (waited for without reaping) for at least 0.2 s.
    os.waitid(os.P_PID, reaped.pid, os.WEXITED | os.WNOWAIT)
    time.sleep(0.2)
    reaped.wait()
    left = subprocess.Popen(["/bin/true"])
    # Until it has exited, without reaping it (and without reading /proc,
    # which the test counts).
    os.waitid(os.P_PID, left.pid, os.WEXITED | os.WNOWAIT)
    burn(0.3)
    facts = {
        "pid": os.getpid(),
        "reaped": reaped.pid,
        "zombie": left.pid,
        "preads": PREADS,
        "log": log,
        "log_writes": LOG_WRITES,
        "log_syncs": LOG_WRITES // SYNC_EVERY,
        "usr1": USR1,
    }
    print("done " + json.dumps(facts), flush=True)
    sys.stdin.readline()


if __name__ == "__main__":
    main()
