"""A process the test drives through stdin, for attach mode and stop conditions.

usage: interactive.py OUT [--pre PATH] [--child]

At start it opens PATH (--pre), forks a child that waits for orders on a
pipe (--child), and prints "ready PID". Then it reads commands, one per
line, and answers each with a line on stdout:

  stat N   N os.read(fd, 4096) on /proc/self/stat (one open)  -> "done"
  pre N    N os.read(fd, 512) on the descriptor opened at start -> "done"
  kid N    the child does N os.read(fd, 4096) on its own
           /proc/self/stat and exits; the parent reaps it     -> "done"
  write    writes the figures so far to OUT                    -> "done"

On end of input it writes OUT and exits 0. Until then it blocks in
read(0): a process that would run forever.
"""

import argparse
import os
import sys

import wl


def child_waits(orders):
    """The forked child: waits (asleep in read(2)) for a count, reads, exits."""
    try:
        count = int(os.read(orders, 16))
        fd = os.open(wl.PROC_STAT, os.O_RDONLY)
        for _ in range(count):
            os.read(fd, 4096)
        os.close(fd)
    finally:
        os._exit(0)


def main(out, preopen=None, child=False):
    ex = wl.Expect()
    pre_fd = None
    if preopen is not None:
        # Opened before the tracer attaches: the report can only name it
        # through /proc/PID/fd, so it must show the real path.
        pre_fd = os.open(preopen, os.O_RDONLY)
        real = os.path.realpath(preopen)
        st = os.fstat(pre_fd)
        ex.describe(real, blksize=st.st_blksize)
        ex.extra["preopened"] = real
    kid = None
    if child:
        orders, give_orders = os.pipe()
        kid = os.fork()
        if kid == 0:
            os.close(give_orders)
            child_waits(orders)
        os.close(orders)
        ex.extra["child_pid"] = kid
    print(f"ready {os.getpid()}", flush=True)
    for line in sys.stdin:
        command = line.split()
        if command[0] == "stat":
            wl.os_reads(ex, wl.PROC_STAT, int(command[1]), 4096)
            ex.describe(wl.PROC_STAT, fs="proc", blksize=os.stat(wl.PROC_STAT).st_blksize)
        elif command[0] == "pre":
            for _ in range(int(command[1])):
                got = len(os.read(pre_fd, 512))
                ex.read(real, 512, got)
        elif command[0] == "kid":
            count = int(command[1])
            os.write(give_orders, str(count).encode())
            _, status = os.waitpid(kid, 0)
            wl.check(os.waitstatus_to_exitcode(status) == 0, f"child {status}")
            ex.entry(wl.PROC_STAT, pid=kid).update(
                syscalls=count,
                opens=1,
                request_sizes={"4096": count},
                by_syscall={"read": count},
            )
            del ex.entry(wl.PROC_STAT, pid=kid)["bytes"]
        elif command[0] == "write":
            ex.write(out)
        else:
            sys.exit(f"unknown command {line!r}")
        print("done", flush=True)
    ex.write(out)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--pre")
    parser.add_argument("--child", action="store_true")
    args = parser.parse_args()
    main(args.out, args.pre, args.child)
