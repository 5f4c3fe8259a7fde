"""Named threads: four started by `threading` (one a Thread subclass, one
with a CJK name, one left to its default "Thread-N" name), each burning a
known amount of its own CPU time, then all parked until killed.

Usage: python_thread_names.py OUT. Prints "ready PID", waits for "go" on
stdin, does the work, writes OUT ({"pid", "names": {tid: name}}) and prints
"done"; then every thread waits for ever (the test stops the tracer, then
kills this process)."""

import json
import sys
import threading
import os
import time

SPIN_S = 0.15
names = {}
parked = threading.Event()
spun = threading.Semaphore(0)


def spin():
    me = threading.current_thread()
    names[threading.get_native_id()] = me.name
    end = time.thread_time() + SPIN_S
    while time.thread_time() < end:
        pass


def work_then_park():
    spin()
    spun.release()
    parked.wait()


class Worker(threading.Thread):
    def run(self):
        work_then_park()


print("ready", os.getpid(), flush=True)
sys.stdin.readline()
threads = [
    threading.Thread(target=work_then_park, name="reader-0"),
    threading.Thread(target=work_then_park, name="reader-1"),
    Worker(name="custom-worker"),
    threading.Thread(target=work_then_park, name="名前-cjk"),
    threading.Thread(target=work_then_park),
]
for t in threads:
    t.daemon = True
    t.start()
spin()
for _ in threads:
    spun.acquire()
with open(sys.argv[1], "w") as f:
    json.dump({"pid": os.getpid(), "names": names}, f, ensure_ascii=False)
print("done", flush=True)
parked.wait()
