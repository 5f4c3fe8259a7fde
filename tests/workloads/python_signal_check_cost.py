"""What seeing Python-level signal handlers run costs a program that gets
no signal, and that they are still seen when signals come.

1. `crunch(ROUNDS)`: big-integer arithmetic with no signal. CPython's
   multiply, power and division of large ints call PyErr_CheckSignals() in
   their loops (SIGCHECK in Objects/longobject.c): every call was a uprobe
   trap, however rare signals are;
2. SIGUSR1 sent to itself 3 times: each handler runs in the eval loop,
   right after the os.kill line;
3. SIGALRM from a timer while in time.sleep(): the sleep is interrupted and
   C code's PyErr_CheckSignals() runs the handler inside the sleep.

Usage: python_signal_check_cost.py OUT ROUNDS. Sets its handlers, prints
"ready PID", waits for a line on standard input (the tracer is watching
and knows its handler table), does 1 to 3 and
writes OUT: its pid, the
crunch's result, and CLOCK_MONOTONIC times: each SIGUSR1 sent (before the
os.kill) and its handler's first line; the timer armed and its handler's
first line."""

import json
import os
import signal
import sys
import time

ran = {"usr1": [], "alrm": []}


def crunch(rounds):
    total = 0
    for i in range(rounds):
        values = []
        for j in range(2000):
            values.append((i * 1_000_003 + j) ** 3 % 1_000_000_007)
        total += sum(values)
    return total


def on_signal(signum, frame):
    ran["usr1" if signum == signal.SIGUSR1 else "alrm"].append(time.monotonic())


out, rounds = sys.argv[1], int(sys.argv[2])
signal.signal(signal.SIGUSR1, on_signal)
signal.signal(signal.SIGALRM, on_signal)
print("ready", os.getpid(), flush=True)
sys.stdin.readline()
result = crunch(rounds)
sent = []
for _ in range(3):
    sent.append(time.monotonic())
    os.kill(os.getpid(), signal.SIGUSR1)  # the handler runs here
armed = time.monotonic()
signal.setitimer(signal.ITIMER_REAL, 0.05)
# The sleep goes on after the handler (PEP 475): ends at 0.3 s whatever.
time.sleep(0.3)  # the sleep
with open(out, "w") as f:
    json.dump({"pid": os.getpid(), "result": result, "sent": sent, "armed": armed, "ran": ran}, f)
