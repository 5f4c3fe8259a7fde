"""A WSGI app for servers that embed CPython (uWSGI, Apache mod_wsgi): every
request burns a known CPU time in `tally_rows`; each worker process keeps
its totals in out/worker-PID.json ({"pid", "requests", "cpu_ns"}) beside
this file (the test copies it into its scratch directory: mod_wsgi passes
no environment to the app).

Every worker takes part, and only once the tracer samples it: a thread's
first request marks arrived/PID-TID and waits until the test creates the
file `go`, which it does once every worker has arrived and the tracer has
said each one is sampled. A thread held in that wait accepts nothing, so
while the test keeps as many requests in flight as there are threads in
all, every thread of every worker takes one.
"""

import json
import os
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "out")
ARRIVED = os.path.join(HERE, "arrived")
BURN_NS = 20_000_000
served = {"requests": 0, "cpu_ns": 0}
lock = threading.Lock()
arrived = threading.local()


def tally_rows(n):
    total = 0
    for i in range(n):
        total += (i * 7) % 13
    return total


def wait_for_go():
    name = f"{os.getpid()}-{threading.get_native_id()}"
    open(os.path.join(ARRIVED, name), "w").close()
    # Waits on the condition itself: the test's go.
    while not os.path.exists(os.path.join(HERE, "go")):
        time.sleep(0.001)


def application(environ, start_response):
    if not getattr(arrived, "done", False):
        wait_for_go()
        arrived.done = True
    begin = time.thread_time_ns()
    while time.thread_time_ns() - begin < BURN_NS:
        tally_rows(2000)
    spent = time.thread_time_ns() - begin
    pid = os.getpid()
    path = os.path.join(OUT, f"worker-{pid}.json")
    with lock:
        served["cpu_ns"] += spent
        served["requests"] += 1
        with open(path + ".tmp", "w") as f:
            json.dump({"pid": pid, **served}, f)
        os.rename(path + ".tmp", path)
    body = b"ok\n"
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]
