"""Sends itself N SIGUSR1 with a Python handler installed.

Writes {"pid", "sent", "handled"} to the file named by argv[1]. Each os.kill()
is delivered on the way back from the syscall, before the next one is sent,
so none is merged ("already pending").
"""
import json
import os
import signal
import sys

N = 25
handled = 0


def on_usr1(signum, frame):
    global handled
    handled += 1


signal.signal(signal.SIGUSR1, on_usr1)
for _ in range(N):
    os.kill(os.getpid(), signal.SIGUSR1)

with open(sys.argv[1], "w") as out:
    json.dump({"pid": os.getpid(), "sent": N, "handled": handled}, out)
