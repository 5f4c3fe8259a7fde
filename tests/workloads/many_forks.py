"""Many short-lived children: CHILDREN forks, child i exiting at once with
code i % 256. Three in four are reaped at once with os.waitpid; every
fourth is reaped late, after the last fork, so it is a zombie across every
fork after its own.

Usage: many_forks.py OUT [CHILDREN, 2000]. Writes OUT ({"parent", "children":
[[pid, exit code, late]...]}) and exits.
"""

import json
import os
import sys

out = sys.argv[1]
count = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
children = []
late = []
for i in range(count):
    pid = os.fork()
    if pid == 0:
        os._exit(i % 256)
    held = i % 4 == 3
    children.append([pid, i % 256, held])
    if held:
        late.append(pid)
    else:
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == i % 256
for pid in late:
    os.waitpid(pid, 0)

with open(out, "w") as f:
    json.dump({"parent": os.getpid(), "children": children}, f)
