"""Children of a parent that ignores SIGCHLD are reaped by the kernel.

With SIGCHLD set to SIG_IGN, an exiting child is released at once (no
zombie, no SIGCHLD). Each child's release is confirmed by its /proc entry
disappearing. Writes {"parent", "children"} to argv[1].
"""
import json
import os
import signal
import sys
import time

K = 3

signal.signal(signal.SIGCHLD, signal.SIG_IGN)
children = []
for _ in range(K):
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    children.append(pid)
for pid in children:
    while os.path.exists(f"/proc/{pid}"):
        time.sleep(0.001)

with open(sys.argv[1], "w") as out:
    json.dump({"parent": os.getpid(), "children": children}, out)
