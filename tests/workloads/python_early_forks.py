"""Forks the sampler may not have known the thread of: THREADS new threads
each spawn `true` as their first act (a thread is known to the sampler
once the tracer reads the thread list again), then the main thread, known
long since, spawns one more. Writes {"early": [pid...], "late": pid} to
argv[1]: the first the threads' children, the second the main thread's.

With `made-states`, each thread first makes a thread state for a thread
to come (`PyThreadState_New`, as `Thread.start` does before the new
thread runs, or a C extension), deleted once its child is spawned:
CPython 3.8-3.11 give it the maker's thread id, and it is the newest in
the interpreter's list when the maker forks.

Usage: python_early_forks.py OUT [THREADS, 8] [made-states]
"""
import ctypes
import json
import subprocess
import sys
import threading

out = sys.argv[1]
count = int(sys.argv[2]) if len(sys.argv) > 2 else 8
made_states = sys.argv[3:4] == ["made-states"]
children = []

if made_states:
    api = ctypes.pythonapi
    api.PyInterpreterState_Main.restype = ctypes.c_void_p
    api.PyThreadState_New.argtypes = [ctypes.c_void_p]
    api.PyThreadState_New.restype = ctypes.c_void_p
    api.PyThreadState_Clear.argtypes = [ctypes.c_void_p]
    api.PyThreadState_Delete.argtypes = [ctypes.c_void_p]


def spawn():
    made = made_states and api.PyThreadState_New(api.PyInterpreterState_Main())
    child = subprocess.Popen(["true"])
    if made:
        api.PyThreadState_Clear(made)
        api.PyThreadState_Delete(made)
    child.wait()
    children.append(child.pid)


threads = [threading.Thread(target=spawn) for _ in range(count)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
late = subprocess.Popen(["true"])
late.wait()
with open(out, "w") as f:
    json.dump({"early": children, "late": late.pid}, f)
