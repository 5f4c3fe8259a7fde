"""An orphan reaped by a subreaper: its parent exits first.

This process becomes a child subreaper (prctl PR_SET_CHILD_SUBREAPER), forks
a child that forks a grandchild and exits. The grandchild is reparented to
this process, which then lets it exit and reaps it with os.waitpid: the
grandchild's original parent is gone, so it was reaped by another process.
Writes {"subreaper", "child", "grandchild"} to argv[1].
"""
import ctypes
import json
import os
import sys

PR_SET_CHILD_SUBREAPER = 36

libc = ctypes.CDLL(None, use_errno=True)
assert libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0

ready_r, ready_w = os.pipe()  # grandchild pid, from the child
go_r, go_w = os.pipe()  # tells the grandchild to exit

child = os.fork()
if child == 0:
    grandchild = os.fork()
    if grandchild == 0:
        os.read(go_r, 1)
        os._exit(5)
    os.write(ready_w, str(grandchild).encode())
    os._exit(0)
grandchild = int(os.read(ready_r, 32))
_, status = os.waitpid(child, 0)
assert os.waitstatus_to_exitcode(status) == 0
# The child is gone: the grandchild now belongs to this subreaper.
os.write(go_w, b"x")
_, status = os.waitpid(grandchild, 0)
assert os.waitstatus_to_exitcode(status) == 5

with open(sys.argv[1], "w") as out:
    json.dump(
        {"subreaper": os.getpid(), "child": child, "grandchild": grandchild}, out
    )
