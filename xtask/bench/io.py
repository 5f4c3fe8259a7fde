#!/usr/bin/env python3
"""Benchmark workload for `cargo xtask bench --suite io`: 1-byte reads and
writes of a regular file, a pipe and sockets, side by side in one process.

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
  file write       os.write(fd, b"x") on a regular file (write; an lseek
                   back to its start once per CHUNK writes)
  file pwrite      os.pwrite(fd, b"x", 0) (pwrite64)
  pipe write       os.write(fd, b"x") on a pipe (write)
  tcp send         sock.send(b"x") on a loopback TCP connection (sendto)
  getppid          os.getppid(): a syscall that is neither, for the cost
                   every syscall pays under the hooks

The peer of each socket sends CHUNK bytes before each CHUNK reads (in this
thread: no writer thread to contend with), so a read always finds data;
the reader of the pipe and of the second connection takes what the last
CHUNK writes wrote before the next ones, so a write never blocks.

  io.py --reads N [--rounds R] --out FILE [--counts FILE]
      writes {"reads_per_round": N/R, "seconds": {kind: [seconds of each
      round]}} to FILE (N calls of each kind);
      --counts writes what the tracer must report: per file or socket and
      direction (`reads` or `writes`), the syscalls made, by syscall name,
      and bytes.

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

    tmp = tempfile.mkdtemp(prefix="tracer-io-")
    paths = {k: os.path.join(tmp, k) for k in ("read", "pread", "write", "pwrite")}
    # The files read hold CHUNK bytes; the files written start empty (no
    # write but the workload's own in their rows).
    for kind, path in paths.items():
        with open(path, "wb") as f:
            if kind in ("read", "pread"):
                f.write(b"x" * CHUNK)
    read_fd = os.open(paths["read"], os.O_RDONLY)
    pread_fd = os.open(paths["pread"], os.O_RDONLY)
    write_fd = os.open(paths["write"], os.O_WRONLY)
    pwrite_fd = os.open(paths["pwrite"], os.O_WRONLY)
    pipe_reader, pipe_writer = os.pipe()

    unix_reader, unix_writer = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    tcp_writer = socket.create_connection(listener.getsockname())
    tcp_writer.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    tcp_reader, _ = listener.accept()
    send_writer = socket.create_connection(listener.getsockname())
    send_writer.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    send_reader, _ = listener.accept()
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

    # What the last chunk of writes wrote, taken by its reader before the
    # next chunk (pipe and connection alike).
    written = {"pipe": 0, "tcp": 0}

    def take(what, drain):
        def refill(m):
            left = written[what]
            while left:
                left -= len(drain(left))
            written[what] = m
        return refill

    read, pread, lseek, getppid = os.read, os.pread, os.lseek, os.getppid
    write, pwrite, tcp_send = os.write, os.pwrite, send_writer.send
    one = b"x"
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
        "file write": loop(lambda m: lseek(write_fd, 0, os.SEEK_SET), lambda: write(write_fd, one)),
        "file pwrite": loop(nothing, lambda: pwrite(pwrite_fd, one, 0)),
        "pipe write": loop(take("pipe", lambda n: os.read(pipe_reader, n)),
                           lambda: write(pipe_writer, one)),
        "tcp send": loop(take("tcp", send_reader.recv), lambda: tcp_send(one)),
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
        send_local = "127.0.0.1:%d" % send_writer.getsockname()[1]
        send_peer = "127.0.0.1:%d" % send_writer.getpeername()[1]
        pipe = "pipe:[%d]" % os.fstat(pipe_writer).st_ino
        counts = [
            {"match": {"kind": "file", "path": paths["write"]}, "rows": "writes",
             "by_syscall": {"write": total}, "bytes": total},
            {"match": {"kind": "file", "path": paths["pwrite"]}, "rows": "writes",
             "by_syscall": {"pwrite64": total}, "bytes": total},
            {"match": {"path": pipe}, "rows": "writes",
             "by_syscall": {"write": total}, "bytes": total},
            {"match": {"kind": "socket", "protocol": "TCP", "local": send_local, "peer": send_peer},
             "rows": "writes", "by_syscall": {"sendto": total}, "bytes": total},
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
    for s in (unix_reader, unix_writer, tcp_reader, tcp_writer, send_reader, send_writer):
        s.close()
    for fd in (read_fd, pread_fd, write_fd, pwrite_fd, pipe_reader, pipe_writer):
        os.close(fd)
    for path in paths.values():
        os.unlink(path)
    os.rmdir(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
