"""Many connections to one server socket: CLIENTS clients connect to one
listener, each sends 10 bytes, the server reads each connection once.

usage: sockets_fold.py OUT CLIENTS. Prints "ready PID", waits for a line on
stdin, does the reads, writes OUT ({"pid", "server", "clients"}), prints
"done" and waits for stdin to close with every connection open.
"""

import json
import os
import socket
import sys


def main(out, clients):
    print("ready", os.getpid(), flush=True)
    sys.stdin.readline()
    listener = socket.create_server(("127.0.0.1", 0), backlog=clients)
    held = [socket.create_connection(listener.getsockname()) for _ in range(clients)]
    for client in held:
        client.sendall(b"c" * 10)
    for _ in range(clients):
        server, _ = listener.accept()
        got = server.recv(10, socket.MSG_WAITALL)
        assert len(got) == 10, got
        held.append(server)
    host, port = listener.getsockname()
    with open(out, "w") as f:
        json.dump({"pid": os.getpid(), "server": f"{host}:{port}", "clients": clients}, f)
    print("done", flush=True)
    sys.stdin.read()


main(sys.argv[1], int(sys.argv[2]))
