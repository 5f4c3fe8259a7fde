"""A child sends its parent M SIGUSR2 that the parent ignores (SIG_IGN).

Writes {"parent", "child", "sent"} to argv[1].
"""
import json
import os
import signal
import sys

M = 7

signal.signal(signal.SIGUSR2, signal.SIG_IGN)
parent = os.getpid()
child = os.fork()
if child == 0:
    for _ in range(M):
        os.kill(parent, signal.SIGUSR2)
    os._exit(0)
_, status = os.waitpid(child, 0)
assert os.waitstatus_to_exitcode(status) == 0

with open(sys.argv[1], "w") as out:
    json.dump({"parent": parent, "child": child, "sent": M}, out)
