"""Sends itself N SIGUSR1 with a Python handler installed, then T more to its
main thread with signal.pthread_kill (tgkill, SI_TKILL).

Writes {"pid", "sent", "sent_to_thread", "handled"} to the file named by
argv[1]. Each signal is delivered on the way back from the syscall, before
the next one is sent, so none is merged ("already pending").
"""
import json
import os
import signal
import sys
import threading

N = 25
T = 3
handled = 0


def on_usr1(signum, frame):
    global handled
    handled += 1


signal.signal(signal.SIGUSR1, on_usr1)
for _ in range(N):
    os.kill(os.getpid(), signal.SIGUSR1)
for _ in range(T):
    signal.pthread_kill(threading.main_thread().ident, signal.SIGUSR1)

with open(sys.argv[1], "w") as out:
    json.dump(
        {"pid": os.getpid(), "sent": N, "sent_to_thread": T, "handled": handled}, out
    )
