"""Spends its time in zlib's C code under one Python function: the native
frames under `compress_loop` are zlib's (`deflate`), which a Python-only
sampler charges to `compress_loop` itself. A fixed amount of work, no
clock: it ends when done."""

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
    print(compress_loop(rounds))
