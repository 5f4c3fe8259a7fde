"""A WSGI app for a real gunicorn pre-fork server: every request burns a
known CPU time in `cpu_heavy`; each worker keeps its total in
OUT_DIR/worker-PID.json ({"pid", "requests", "cpu_ns"}).

The gunicorn config in this file (`-c`) says "ready" on standard output
once the master listens.
"""

import json
import os
import time

OUT_DIR = os.environ["TRACER_TEST_OUT"]
BURN_S = 0.02
served = {"requests": 0, "cpu_ns": 0}


def cpu_heavy(seconds):
    end = time.thread_time_ns() + int(seconds * 1e9)
    n = 0
    while time.thread_time_ns() < end:
        n += 1
    return n


def app(environ, start_response):
    begin = time.thread_time_ns()
    cpu_heavy(BURN_S)
    served["cpu_ns"] += time.thread_time_ns() - begin
    served["requests"] += 1
    pid = os.getpid()
    with open(os.path.join(OUT_DIR, f"worker-{pid}.json"), "w") as f:
        json.dump({"pid": pid, **served}, f)
    body = b"ok\n"
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]


# gunicorn settings (this file is also the -c config).
workers = 2
worker_class = "sync"


def when_ready(server):
    print("ready", flush=True)
