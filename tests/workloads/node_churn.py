"""Process churn on a node: prints "ready PID", waits for "go" on standard
input, then starts RATE processes a second for SECONDS (each /bin/true,
every tenth this Python with `-c pass`), reaping each, and prints "done
FACTS" (JSON: every pid it started, the Python ones apart, and how many a
second it held).

Usage: node_churn.py RATE SECONDS"""

import json
import os
import sys
import time

RATE = int(sys.argv[1])
SECONDS = float(sys.argv[2])

print(f"ready {os.getpid()}", flush=True)
sys.stdin.readline()
pids, python_pids = [], []
start = time.monotonic()
for i in range(int(RATE * SECONDS)):
    # Paced: the i-th start at start + i / RATE.
    delay = start + i / RATE - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    if i % 10 == 0:
        argv = [sys.executable, "-c", "pass"]
    else:
        argv = ["/bin/true"]
    pid = os.posix_spawn(argv[0], argv, os.environ)
    (python_pids if i % 10 == 0 else pids).append(pid)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, argv
elapsed = time.monotonic() - start
facts = {"pids": pids, "python_pids": python_pids, "rate": (len(pids) + len(python_pids)) / elapsed}
print("done " + json.dumps(facts), flush=True)
sys.stdin.read()
