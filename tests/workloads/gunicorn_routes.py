"""A WSGI app for a real gunicorn server, with routes whose time goes to
different things: CPU (`/cpu/N`), a slow "database" on a local TCP socket
(`/db/N`, TRACER_TEST_DB=host:port), a file read in 1 KiB chunks (`/file`,
TRACER_TEST_FILE), a sleep (`/sleep`), nothing (`/fast`), and errors
(`/missing` 404, `/boom` 500).

This file is also the gunicorn config (`-c`): TRACER_TEST_WORKER_CLASS
(sync, gthread) and TRACER_TEST_WORKERS; it says "ready" on standard output
once the master listens.
"""

import os
import time

from http_routes import cpu_heavy, query, read_file


def app(environ, start_response):
    path = environ["PATH_INFO"]
    status = "200 OK"
    if path.startswith("/cpu/"):
        cpu_heavy(0.01)
    elif path.startswith("/db/"):
        query()
    elif path == "/file":
        read_file()
    elif path == "/sleep":
        time.sleep(0.02)
    elif path == "/fast":
        pass
    elif path == "/boom":
        status = "500 Internal Server Error"
    else:
        status = "404 Not Found"
    body = b"ok\n"
    start_response(status, [("Content-Length", str(len(body)))])
    return [body]


# gunicorn settings (this file is also the -c config).
workers = int(os.environ.get("TRACER_TEST_WORKERS", "2"))
worker_class = os.environ.get("TRACER_TEST_WORKER_CLASS", "sync")
threads = 2


def when_ready(server):
    print("ready", flush=True)
