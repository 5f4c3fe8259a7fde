"""Writes as a service makes them, each count known exactly:

- 400 x os.write(4 KiB) to a pipe whose reader (a forked child) sleeps 2 ms
  after each 4 KiB read: the pipe (64 KiB) fills and the writer blocks;
- 300 lines to a line-buffered log file in argv[2] (a write per line),
  with an os.fsync every 10 lines (30);
- 100 x sendall(1000 B) on a TCP connection to a thread of this process.

Writes {"pid", "reader", "pipe_line", "log", "log_bytes", "send_line",
"port"} to argv[1].
"""
import json
import os
import socket
import sys
import threading
import time

PIPE_WRITES, PIPE_BLOCK = 400, 4096
LOG_LINES, SYNC_EVERY = 300, 10
SENDS, SEND_BLOCK = 100, 1000


def line_of(marker):
    """The line of this file that ends with `marker` (read before tracing)."""
    with open(__file__) as source:
        return next(n for n, text in enumerate(source, 1) if text.rstrip().endswith(marker))


def slow_reader(read_end):
    """The child: the pipe 4 KiB at a time, 2 ms apart, to its end."""
    total = 0
    while True:
        chunk = os.read(read_end, PIPE_BLOCK)
        if not chunk:
            break
        total += len(chunk)
        time.sleep(0.002)
    os._exit(0 if total == PIPE_WRITES * PIPE_BLOCK else 1)


def fill_pipe(write_end):
    block = b"x" * PIPE_BLOCK
    for _ in range(PIPE_WRITES):
        os.write(write_end, block)  # pipe-line


def write_log(path):
    """Line-buffered: every line is a write; an fsync every SYNC_EVERY."""
    written = 0
    with open(path, "w", buffering=1) as log:
        for i in range(LOG_LINES):
            written += log.write(f"record {i:04d} of the log\n")
            if (i + 1) % SYNC_EVERY == 0:
                os.fsync(log.fileno())
    return written


def send_over_tcp():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    received = []

    def receive():
        conn, _ = server.accept()
        total = 0
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            total += len(chunk)
        received.append(total)
        conn.close()

    receiver = threading.Thread(target=receive)
    receiver.start()
    port = server.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    block = b"y" * SEND_BLOCK
    for _ in range(SENDS):
        client.sendall(block)  # send-line
    client.close()
    receiver.join()
    server.close()
    assert received == [SENDS * SEND_BLOCK], received
    return port


def main():
    out, directory = sys.argv[1], sys.argv[2]
    read_end, write_end = os.pipe()
    reader = os.fork()
    if reader == 0:
        os.close(write_end)
        slow_reader(read_end)
    os.close(read_end)
    fill_pipe(write_end)
    os.close(write_end)
    _, status = os.waitpid(reader, 0)
    assert status == 0, status
    log = os.path.join(directory, "app.log")
    log_bytes = write_log(log)
    port = send_over_tcp()
    facts = {
        "pid": os.getpid(),
        "reader": reader,
        "pipe_line": PIPE_LINE,
        "log": log,
        "log_bytes": log_bytes,
        "send_line": SEND_LINE,
        "port": port,
    }
    with open(out, "w") as f:
        json.dump(facts, f)


PIPE_LINE = line_of("# pipe-line")
SEND_LINE = line_of("# send-line")
main()
