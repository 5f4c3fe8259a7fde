"""os.fork() + os._exit(3) reaped with os.waitpid, and a child killed with SIGKILL.

A thread is started and joined first: it must not be listed as a process.
Writes {"parent", "exited", "exit_code", "killed", "threads"} to argv[1].
"""
import json
import os
import signal
import sys
import threading

worker = threading.Thread(target=lambda: None)
worker.start()
worker.join()

exited = os.fork()
if exited == 0:
    os._exit(3)
_, status = os.waitpid(exited, 0)
assert os.waitstatus_to_exitcode(status) == 3

r, w = os.pipe()
killed = os.fork()
if killed == 0:
    os.close(r)
    os.write(w, b"r")
    while True:
        signal.pause()
os.close(w)
assert os.read(r, 1) == b"r"  # the child is running
os.kill(killed, signal.SIGKILL)
_, status = os.waitpid(killed, 0)
assert os.waitstatus_to_exitcode(status) == -signal.SIGKILL

with open(sys.argv[1], "w") as out:
    json.dump(
        {
            "parent": os.getpid(),
            "exited": exited,
            "exit_code": 3,
            "killed": killed,
            "threads": 2,
        },
        out,
    )
