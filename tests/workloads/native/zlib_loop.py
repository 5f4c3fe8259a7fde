"""Spends its time in zlib's C code under one Python function: the native
frames under `compress_loop` are zlib's (`deflate`), which a Python-only
sampler charges to `compress_loop` itself. A fixed amount of work, no
clock: it ends when done.

Usage: zlib_loop.py [ROUNDS] [fork]"""

import os
import sys
import zlib

DATA = os.urandom(1 << 15) + bytes(1 << 15)


def compress_loop(rounds):
    total = 0
    for _ in range(rounds):
        total += len(zlib.compress(DATA, 9))
    return total


if __name__ == "__main__":
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 400
    # `fork`: the work runs in a child forked without exec (as a pre-fork
    # server's worker), the parent only waits for it.
    if sys.argv[2:] == ["fork"]:
        child = os.fork()
        if child == 0:
            print(compress_loop(rounds))
            sys.stdout.flush()
            os._exit(0)
        _, status = os.waitpid(child, 0)
        sys.exit(os.waitstatus_to_exitcode(status))
    print(compress_loop(rounds))
