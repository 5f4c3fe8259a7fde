"""Signals held back by lines of Python: a library function sets SIGTERM to
be ignored, then a SIGTERM arrives (ignored); a critical section blocks
SIGINT with pthread_sigmask, a SIGINT arrives while it is blocked, and is
delivered at the unblock (KeyboardInterrupt, caught).

Usage: python_signal_changes.py OUT. Prints "ready PID" and waits for a
line on standard input; then does the above, writes OUT: {"pid",
"keyboard_interrupts"}, prints "done" and waits for its standard input to
close (the tracer is stopped while the process lives, so every stack can
still be read)."""

import json
import os
import signal
import sys


def quiet_library():
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # ignores SIGTERM


def critical_section():
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})  # blocks SIGINT
    os.kill(os.getpid(), signal.SIGINT)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # unblocks SIGINT


print("ready", os.getpid(), flush=True)
sys.stdin.readline()
quiet_library()
os.kill(os.getpid(), signal.SIGTERM)
interrupts = 0
try:
    critical_section()
    # The handler runs at the eval loop's next check, at the latest here.
    for _ in range(1000):
        pass
except KeyboardInterrupt:
    interrupts += 1
with open(sys.argv[1], "w") as f:
    json.dump({"pid": os.getpid(), "keyboard_interrupts": interrupts}, f)
print("done", flush=True)
sys.stdin.read()
