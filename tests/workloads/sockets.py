"""Socket reads, counted exactly: recv, recv_into, recvmsg, recvmsg_into
and os.read on an accepted TCP connection, recvfrom on a UDP server,
recv on a connected UDP socket, recv on an accepted unix connection and a
socketpair, and recvmmsg (through ctypes: CPython has no binding).

usage: sockets.py OUT DIR [--wait]

DIR holds the unix socket. With --wait it prints "ready PID", waits for a
line on stdin, does the reads, writes OUT, prints "done" and waits for
stdin to close, its sockets still open (the tracer names them then too).

Every peer writes everything before the reader reads, and stream reads ask
with MSG_WAITALL (the os.read reads ask for less than is queued), so each
read returns exactly its request: the byte counts are exact, whatever the
scheduling. OUT has, per socket, the figures wl.Expect records, its name as
the report must give it, and the line of each read call ("lines").
"""

import ctypes
import os
import socket
import sys

import wl

WAITALL = socket.MSG_WAITALL
SOURCE = open(__file__).read().splitlines()


def line_of(tag):
    """The line number of the read tagged `# read: TAG` in this file."""
    return next(i for i, text in enumerate(SOURCE, 1) if text.endswith(f"# read: {tag}"))


def inet(sock):
    host, port = sock.getsockname()[:2]
    return f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"


def socket_row(ex, name, protocol, local, peer):
    """The socket's row: one connection, named, not folded."""
    ex.describe(
        name,
        kind="socket",
        protocol=protocol,
        local=local,
        peer=peer,
        connections=1,
        folded=False,
        unnamed=None,
    )


def tcp_reads(ex):
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname())
    server, _ = listener.accept()
    name = f"TCP {inet(server)} <- {inet(client)}"
    socket_row(ex, name, protocol="TCP", local=inet(server), peer=inet(client))
    client.sendall(b"t" * (7 * 64 + 5 * 100 + 4 * 200 + 3 * 80 + 6 * 32))
    for _ in range(7):
        got = len(server.recv(64, WAITALL))  # read: tcp recv
        ex.read(name, 64, got, "recvfrom")
    buf = bytearray(256)
    for _ in range(5):
        got = server.recv_into(buf, 100, WAITALL)  # read: tcp recv_into
        ex.read(name, 100, got, "recvfrom")
    for _ in range(4):
        got = len(server.recvmsg(200, 0, WAITALL)[0])  # read: tcp recvmsg
        ex.read(name, 200, got, "recvmsg")
    for _ in range(3):
        bufs = [bytearray(30), bytearray(50)]
        got = server.recvmsg_into(bufs, 0, WAITALL)[0]  # read: tcp recvmsg_into
        ex.read(name, 80, got, "recvmsg")
    for _ in range(6):
        got = len(os.read(server.fileno(), 32))  # read: tcp read
        ex.read(name, 32, got)
    ex.extra["tcp"] = name
    return [listener, client, server]


def udp_reads(ex):
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.connect(server.getsockname())
    for _ in range(4):
        client.send(b"u" * 40)
    name = f"UDP {inet(server)}"
    socket_row(ex, name, protocol="UDP", local=inet(server), peer=None)
    for _ in range(4):
        got = len(server.recvfrom(1500)[0])  # read: udp recvfrom
        ex.read(name, 1500, got, "recvfrom")
    # A connected UDP socket: named with its peer.
    for _ in range(2):
        server.sendto(b"v" * 24, client.getsockname())
    connected = f"UDP {inet(client)} <- {inet(server)}"
    socket_row(ex, connected, protocol="UDP", local=inet(client), peer=inet(server))
    for _ in range(2):
        got = len(client.recv(512))  # read: udp recv
        ex.read(connected, 512, got, "recvfrom")
    ex.extra["udp"] = name
    ex.extra["udp_connected"] = connected
    return [server, client]


def unix_reads(ex, directory):
    path = os.path.join(directory, "x.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen()
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.connect(path)
    server, _ = listener.accept()
    client.sendall(b"x" * 3 * 128)
    name = f"unix {path}"
    socket_row(ex, name, protocol="unix", local=path, peer=None)
    for _ in range(3):
        got = len(server.recv(128, WAITALL))  # read: unix recv
        ex.read(name, 128, got, "recvfrom")
    a, b = socket.socketpair()
    b.sendall(b"p" * 2 * 16)
    ex.describe("unix (unnamed)", kind="socket", protocol="unix", local=None, peer=None)
    for _ in range(2):
        got = len(a.recv(16, WAITALL))  # read: socketpair recv
        ex.read("unix (unnamed)", 16, got, "recvfrom")
    ex.extra["unix"] = name
    return [listener, client, server, a, b]


class Iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


class Msghdr(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_void_p),
        ("namelen", ctypes.c_uint32),
        ("iov", ctypes.POINTER(Iovec)),
        ("iovlen", ctypes.c_size_t),
        ("control", ctypes.c_void_p),
        ("controllen", ctypes.c_size_t),
        ("flags", ctypes.c_int),
    ]


class Mmsghdr(ctypes.Structure):
    _fields_ = [("hdr", Msghdr), ("len", ctypes.c_uint)]


def recvmmsg_reads(ex):
    """recvmmsg(fd, 4 messages of one 64-byte buffer): 3 datagrams queued,
    3 returned, twice. One syscall each, a request of 256, 75 bytes."""
    wl.check(ctypes.sizeof(Mmsghdr) == 64, f"mmsghdr is {ctypes.sizeof(Mmsghdr)} bytes")
    libc = ctypes.CDLL(None, use_errno=True)
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    name = f"UDP {inet(server)}"
    socket_row(ex, name, protocol="UDP", local=inet(server), peer=None)
    buffers = [ctypes.create_string_buffer(64) for _ in range(4)]
    iovecs = (Iovec * 4)(*[Iovec(ctypes.addressof(b), 64) for b in buffers])
    for _ in range(2):
        for _ in range(3):
            client.sendto(b"m" * 25, server.getsockname())
        msgs = (Mmsghdr * 4)()
        for i in range(4):
            msgs[i].hdr.iov = ctypes.pointer(iovecs[i])
            msgs[i].hdr.iovlen = 1
        n = libc.recvmmsg(server.fileno(), msgs, 4, socket.MSG_DONTWAIT, None)  # read: recvmmsg
        wl.check(n == 3, f"recvmmsg returned {n} (errno {ctypes.get_errno()})")
        ex.read(name, 256, sum(msgs[i].len for i in range(n)), "recvmmsg")
    ex.extra["recvmmsg"] = name
    return [server, client]


def main(out, directory, wait):
    if wait:
        print("ready", os.getpid(), flush=True)
        sys.stdin.readline()
    ex = wl.Expect()
    held = tcp_reads(ex) + udp_reads(ex) + unix_reads(ex, directory) + recvmmsg_reads(ex)
    ex.extra["lines"] = {
        tag: line_of(tag)
        for tag in [
            "tcp recv",
            "tcp recv_into",
            "tcp recvmsg",
            "tcp recvmsg_into",
            "tcp read",
            "udp recvfrom",
            "udp recv",
            "unix recv",
            "socketpair recv",
            "recvmmsg",
        ]
    }
    ex.extra["script"] = os.path.abspath(__file__)
    ex.write(out)
    if wait:
        print("done", flush=True)
        sys.stdin.read()
    for sock in held:
        sock.close()


main(sys.argv[1], sys.argv[2], "--wait" in sys.argv[3:])
