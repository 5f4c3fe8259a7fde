"""SIGUSR1 sent while blocked with pthread_sigmask, unblocked after a delay.

The delay is measured between the return of os.kill() (the signal is already
generated) and the unblocking call (it cannot be delivered before), so the
kernel's generation-to-delivery latency is at least `blocked_ns`.
Writes {"pid", "blocked_ns", "handled"} to argv[1].
"""
import json
import os
import signal
import sys
import time

DELAY_S = 0.3
handled = 0


def on_usr1(signum, frame):
    global handled
    handled += 1


signal.signal(signal.SIGUSR1, on_usr1)
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
os.kill(os.getpid(), signal.SIGUSR1)
sent = time.monotonic_ns()
time.sleep(DELAY_S)
unblocking = time.monotonic_ns()
signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR1})

with open(sys.argv[1], "w") as out:
    json.dump(
        {"pid": os.getpid(), "blocked_ns": unblocking - sent, "handled": handled}, out
    )
