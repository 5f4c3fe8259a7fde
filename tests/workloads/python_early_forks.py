"""Forks the sampler may not have known the thread of: THREADS new threads
each spawn `true` as their first act (a thread is known to the sampler
once the tracer reads the thread list again), then the main thread, known
long since, spawns one more. Writes {"early": [pid...], "late": pid} to
argv[1]: the first the threads' children, the second the main thread's.

Usage: python_early_forks.py OUT [THREADS, 8]
"""
import json
import subprocess
import sys
import threading

out = sys.argv[1]
count = int(sys.argv[2]) if len(sys.argv) > 2 else 8
children = []


def spawn():
    child = subprocess.Popen(["true"])
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
