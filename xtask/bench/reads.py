#!/usr/bin/env python3
"""Benchmark workload for `cargo xtask bench --suite reads`: 1-byte reads of
a regular file and of sockets, side by side in one process.

Each kind of read runs N times, split into --rounds rounds; in each round
every kind does its share, in an order rotated from round to round, so the
machine's drift during the run falls on every kind alike. Each read is one
syscall of 1 byte that never blocks:

  file read        os.read(fd, 1) on a regular file (read; an lseek back
                   to its start once per CHUNK reads)
  file pread       os.pread(fd, 1, 0) (pread64)
  unix recv        sock.recv(1) on a socketpair (recvfrom)
  unix recv_into   sock.recv_into(buf, 1) (recvfrom)
  unix read        os.read(sock.fileno(), 1): read on a socket
  unix recvmsg     sock.recvmsg(1) (recvmsg)
  tcp recv         sock.recv(1) on a loopback TCP connection (recvfrom)
  getppid          os.getppid(): a syscall that is not a read, for the
                   cost every syscall pays under the hooks

The peer of each socket sends CHUNK bytes before each CHUNK reads (in this
thread: no writer thread to contend with), so a read always finds data.

  reads.py --reads N [--rounds R] --out FILE [--counts FILE]
      writes {"reads_per_round": N/R, "seconds": {kind: [seconds of each
      round]}} to FILE;
      --counts writes what the tracer must report: per file or socket, the
      read syscalls made, by syscall name, and bytes.

Standard library only; Python 3.9+; Linux.
"""

import argparse
import json
import os
import socket
import sys
import tempfile
import time

CHUNK = 4096


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reads", type=int, default=50_000)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--out", required=True)
    ap.add_argument("--counts")
    args = ap.parse_args()
    n, rounds = args.reads, args.rounds
    if n <= 0 or rounds <= 0 or n % rounds:
        sys.exit("--reads must be a positive multiple of --rounds")
    per_round = n // rounds
    chunk = min(CHUNK, per_round)

    tmp = tempfile.mkdtemp(prefix="tracer-reads-")
    paths = {k: os.path.join(tmp, k) for k in ("read", "pread")}
    for path in paths.values():
        with open(path, "wb") as f:
            f.write(b"x" * CHUNK)
    read_fd = os.open(paths["read"], os.O_RDONLY)
    pread_fd = os.open(paths["pread"], os.O_RDONLY)

    unix_reader, unix_writer = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    tcp_writer = socket.create_connection(listener.getsockname())
    tcp_writer.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    tcp_reader, _ = listener.accept()
    listener.close()
    data = b"y" * chunk
    buf = bytearray(1)

    # Every kind is the same loop: `refill` once per `chunk` reads (an
    # lseek back to the file's start, or the peer's send), then `step`, one
    # syscall, `chunk` times; so the Python around the syscall is the same
    # for every kind and cancels out of the differences.
    def loop(refill, step):
        def run(count):
            for start in range(0, count, chunk):
                m = min(chunk, count - start)
                refill(m)
                for _ in range(m):
                    step()
        return run

    def nothing(m):
        pass

    def send(writer):
        return lambda m: writer.sendall(data[:m])

    read, pread, lseek, getppid = os.read, os.pread, os.lseek, os.getppid
    recv, recv_into, recvmsg = unix_reader.recv, unix_reader.recv_into, unix_reader.recvmsg
    unix_fd, tcp_recv = unix_reader.fileno(), tcp_reader.recv
    kinds = {
        "file read": loop(lambda m: lseek(read_fd, 0, os.SEEK_SET), lambda: read(read_fd, 1)),
        "file pread": loop(nothing, lambda: pread(pread_fd, 1, 0)),
        "unix recv": loop(send(unix_writer), lambda: recv(1)),
        "unix recv_into": loop(send(unix_writer), lambda: recv_into(buf, 1)),
        "unix read": loop(send(unix_writer), lambda: read(unix_fd, 1)),
        "unix recvmsg": loop(send(unix_writer), lambda: recvmsg(1)),
        "tcp recv": loop(send(tcp_writer), lambda: tcp_recv(1)),
        "getppid": loop(nothing, lambda: getppid()),
    }

    seconds = {k: [] for k in kinds}
    names = list(kinds)
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            kinds[name](per_round)
            seconds[name].append(time.perf_counter() - start)

    with open(args.out, "w", encoding="ascii") as out:
        json.dump({"reads_per_round": per_round, "seconds": seconds}, out)
    if args.counts:
        total = per_round * rounds
        # The rows of the tracer's `reads[]` these reads must be in: the
        # keys of `match` name the row, the rest must equal the row's.
        tcp_local = "127.0.0.1:%d" % tcp_reader.getsockname()[1]
        tcp_peer = "127.0.0.1:%d" % tcp_reader.getpeername()[1]
        counts = [
            {"match": {"kind": "file", "path": paths["read"]},
             "by_syscall": {"read": total}, "bytes": total},
            {"match": {"kind": "file", "path": paths["pread"]},
             "by_syscall": {"pread64": total}, "bytes": total},
            {"match": {"kind": "socket", "protocol": "unix"},
             "by_syscall": {"recvfrom": 2 * total, "read": total, "recvmsg": total},
             "bytes": 4 * total},
            {"match": {"kind": "socket", "protocol": "TCP", "local": tcp_local, "peer": tcp_peer},
             "by_syscall": {"recvfrom": total}, "bytes": total},
        ]
        with open(args.counts, "w", encoding="ascii") as out:
            json.dump(counts, out)
    for s in (unix_reader, unix_writer, tcp_reader, tcp_writer):
        s.close()
    os.close(read_fd)
    os.close(pread_fd)
    for path in paths.values():
        os.unlink(path)
    os.rmdir(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
