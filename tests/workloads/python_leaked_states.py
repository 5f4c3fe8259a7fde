"""Thread states a C extension leaked as its threads ended: THREADS threads
each make one (`PyThreadState_New`, as a C extension does for a callback
thread) and end without deleting it. glibc gives the next threads it starts
the ended ones' `pthread_t` (their cached stacks), so the leaked states
carry live threads' `pthread`. Then THREADS new threads each print
`thread TID` and wait; once all wait, the main thread prints `ready PID`
and reads a line from standard input, and each thread spawns `true`.
Writes {"children": [pid...], "reused": N} to argv[1]: N of the new
threads have a leaked state's `pthread_t`.

Usage: python_leaked_states.py OUT [THREADS, 4]
"""
import ctypes
import json
import os
import subprocess
import sys
import threading

api = ctypes.pythonapi
api.PyInterpreterState_Main.restype = ctypes.c_void_p
api.PyThreadState_New.argtypes = [ctypes.c_void_p]
api.PyThreadState_New.restype = ctypes.c_void_p

out = sys.argv[1]
count = int(sys.argv[2]) if len(sys.argv) > 2 else 4
leaked = set()


def leak():
    api.PyThreadState_New(api.PyInterpreterState_Main())
    leaked.add(threading.get_ident())


# All at once, so that each has a stack of its own to leave in the cache.
enders = [threading.Thread(target=leak) for _ in range(count)]
for thread in enders:
    thread.start()
for thread in enders:
    thread.join()
# CPython detaches its threads: a stack is cached for the next thread once
# its thread has left the kernel, a moment after `join` returns.
while len(os.listdir("/proc/self/task")) > 1:
    os.sched_yield()

started = threading.Barrier(count + 1)
go = threading.Event()
children = []
printing = threading.Lock()


def serve():
    # One line each: print's text and newline are two writes.
    with printing:
        sys.stdout.write(f"thread {threading.get_native_id()}\n")
        sys.stdout.flush()
    started.wait()
    go.wait()
    child = subprocess.Popen(["true"])
    child.wait()
    children.append(child.pid)


servers = [threading.Thread(target=serve) for _ in range(count)]
for thread in servers:
    thread.start()
started.wait()
print("ready", os.getpid(), flush=True)
sys.stdin.readline()
go.set()
for thread in servers:
    thread.join()
reused = sum(thread.ident in leaked for thread in servers)
with open(out, "w") as f:
    json.dump({"children": children, "reused": reused}, f)
