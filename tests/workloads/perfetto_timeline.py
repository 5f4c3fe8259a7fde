"""A workload whose timeline is known, for the --perfetto test.

It prints "ready PID" and waits for a line on stdin; then:

it preads /proc/self/stat 50 times with a 333-byte request, reads a pipe
one byte at a time 5 times while a thread named "feeder" writes a byte
every 10 ms (each read sleeps), sends itself SIGUSR1 (a Python handler
runs), spawns /bin/true and reaps it 200 ms later (a zombie in between),
then burns CPU in `burn`. It writes what it knows (pids, tids, counts) to
the JSON file given as argv[1].

Usage: perfetto_timeline.py OUT.json
"""
import json
import os
import signal
import subprocess
import sys
import threading
import time

PREADS = 50
PREAD_SIZE = 333
PIPE_READS = 5

handled = []


def on_usr1(signum, frame):
    handled.append(signum)


def poll_stat():
    fd = os.open("/proc/self/stat", os.O_RDONLY)
    for _ in range(PREADS):
        os.pread(fd, PREAD_SIZE, 0)
    os.close(fd)


def wait_for_feeder(r):
    for _ in range(PIPE_READS):
        os.read(r, 1)


def burn(seconds):
    total = 0
    end = time.process_time() + seconds
    while time.process_time() < end:
        total += 1
    return total


def main(out_path):
    signal.signal(signal.SIGUSR1, on_usr1)
    # The test says go once the tracer knows the interpreter and its
    # signal handlers.
    print(f"ready {os.getpid()}", flush=True)
    sys.stdin.readline()
    poll_stat()
    r, w = os.pipe()
    tids = {}

    def feed():
        tids["feeder"] = threading.get_native_id()
        for _ in range(PIPE_READS):
            time.sleep(0.01)
            os.write(w, b"x")

    feeder = threading.Thread(target=feed, name="feeder")
    feeder.start()
    wait_for_feeder(r)
    feeder.join()
    os.kill(os.getpid(), signal.SIGUSR1)
    # The handler runs at the next bytecode boundary; wait for it.
    while not handled:
        time.sleep(0.001)
    child = subprocess.Popen(["/bin/true"])
    time.sleep(0.2)
    child.wait()
    burn(0.3)
    with open(out_path, "w") as out:
        json.dump(
            {
                "pid": os.getpid(),
                "feeder_tid": tids["feeder"],
                "child": child.pid,
                "pipe": os.readlink(f"/proc/self/fd/{r}"),
                "preads": PREADS,
                "pread_size": PREAD_SIZE,
                "pipe_reads": PIPE_READS,
            },
            out,
        )


if __name__ == "__main__":
    main(sys.argv[1])
