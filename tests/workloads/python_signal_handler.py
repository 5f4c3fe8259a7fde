"""When Python-level signal handlers really run (CPython's C handler only
sets a flag; the Python function runs at the main thread's next check):

0. SIGHUP to a closure set, run and reset at once: the function object is
   freed before the tracer looks, its handler is still named;
1. SIGUSR1 sent by another thread while the main thread is in one long C
   call that does not check signals (hashlib.pbkdf2_hmac): the handler runs
   after the call returns;
2. SIGUSR1 sent to a worker thread with pthread_kill: delivered there, the
   handler runs in the main thread;
3. SIGUSR2 sent while the main thread is in a long C call; once it is
   delivered (CPython's C handler writes to the wakeup fd), the sending
   thread ends the process with os._exit: the Python handler never runs.

Usage: python_signal_handler.py OUT. Prints "ready PID", waits for a line
on standard input, does 1 and 2, writes OUT (CLOCK_MONOTONIC times: when
each signal was sent, when each handler's first line ran, when the C call
of 1 returned; the worker's tid; the line of the C call of 3), then does 3
and exits with status 0 from the sending thread.

The times bound what the tracer may report for 1, generation to the
handler's start: the kernel generates the signal between "sending" and
"sent"; the main thread checks for signals before the handler's first line
("ran"), and after the C call's CPU time ("ran_cpu" minus
"c_call_started_cpu", thread CPU clock) has passed since "c_call_started"."""

import hashlib
import json
import os
import signal
import sys
import threading
import time

ran = {"usr1": [], "usr2": []}
ran_cpu = {"usr1": []}
sending = {}
sent = {}


def on_usr1(signum, frame):
    ran["usr1"].append(time.monotonic())
    ran_cpu["usr1"].append(time.thread_time())


def on_usr2(signum, frame):
    ran["usr2"].append(time.monotonic())


def send_when(go, sig, key, then=None):
    go.wait()
    # The main thread has let go of the GIL inside its C call: this runs
    # while it computes.
    sending[key] = time.monotonic()
    os.kill(os.getpid(), sig)
    sent[key] = time.monotonic()
    if then:
        then()


def in_c_for(iterations):
    hashlib.pbkdf2_hmac("sha256", b"secret", b"salt", iterations)  # the C call


def exit_once_delivered(wakeup):
    # The C handler wrote the signal's number: it was delivered.
    os.read(wakeup, 1)
    os._exit(0)


def with_a_passing_handler():
    def passing(signum, frame):
        ran["passing"].append(time.monotonic())

    signal.signal(signal.SIGHUP, passing)
    os.kill(os.getpid(), signal.SIGHUP)
    # The closure is freed here, before the tracer may look at it.
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    return [lambda: n for n in range(100)]


signal.signal(signal.SIGUSR1, on_usr1)
signal.signal(signal.SIGUSR2, on_usr2)
print("ready", os.getpid(), flush=True)
sys.stdin.readline()

# 0. a handler set, run and reset at once (its function object freed).
ran["passing"] = []
with_a_passing_handler()

# 1. late: the handler waits for the C call.
go = threading.Event()
sender = threading.Thread(target=send_when, args=(go, signal.SIGUSR1, "usr1"))
sender.start()
go.set()
c_call_started = time.monotonic()
c_call_started_cpu = time.thread_time()
in_c_for(400_000)
c_call_returned = time.monotonic()
sender.join()

# 2. to a worker thread; the handler runs in the main thread.
worker_tid = []


def signal_myself():
    worker_tid.append(threading.get_native_id())
    signal.pthread_kill(threading.get_ident(), signal.SIGUSR1)
    sent["usr1_thread"] = time.monotonic()


worker = threading.Thread(target=signal_myself)
worker.start()
worker.join()
for _ in range(1000):
    pass

with open(sys.argv[1], "w") as f:
    json.dump(
        {
            "pid": os.getpid(),
            "sending": sending,
            "sent": sent,
            "ran": ran,
            "ran_cpu": ran_cpu,
            "c_call_started": c_call_started,
            "c_call_started_cpu": c_call_started_cpu,
            "c_call_returned": c_call_returned,
            "worker_tid": worker_tid[0],
        },
        f,
    )

# 3. never: the process exits while the main thread is still in C.
wakeup, wakeup_w = os.pipe()
os.set_blocking(wakeup_w, False)
signal.set_wakeup_fd(wakeup_w)
go = threading.Event()
sender = threading.Thread(
    target=send_when,
    args=(go, signal.SIGUSR2, "usr2", lambda: exit_once_delivered(wakeup)),
)
sender.start()
go.set()
in_c_for(10**9)  # minutes: the sending thread ends the process first
