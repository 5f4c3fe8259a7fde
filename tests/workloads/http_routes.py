"""What the routes of gunicorn_routes.py and uvicorn_routes.py do, shared:
CPU for a known time, a query to the slow "database" on a local TCP socket
(TRACER_TEST_DB=host:port), a file read in 1 KiB chunks
(TRACER_TEST_FILE)."""

import os
import socket
import time

DB = os.environ.get("TRACER_TEST_DB", "127.0.0.1:1")
FILE = os.environ.get("TRACER_TEST_FILE", "/dev/null")


def cpu_heavy(seconds):
    end = time.thread_time_ns() + int(seconds * 1e9)
    n = 0
    while time.thread_time_ns() < end:
        n += 1
    return n


def db_address():
    host, port = DB.rsplit(":", 1)
    return host, int(port)


def query():
    with socket.create_connection(db_address()) as db:
        db.sendall(b"select\n")
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = db.recv(64)
            if not chunk:
                break
            reply += chunk
    return reply


def read_file():
    total = 0
    with open(FILE, "rb", buffering=0) as f:
        while chunk := f.read(1024):
            total += len(chunk)
    return total
