"""Pure-Python work: integer arithmetic and list growth, whose native
frames are all the interpreter's own (long_mul, list_resize, the
allocator, memcpy as the interpreter calls it). A fixed amount of work,
no clock.

Usage: pure_loop.py [ROUNDS]"""

import sys


def crunch(rounds):
    total = 0
    for i in range(rounds):
        values = []
        for j in range(2000):
            values.append((i * 1_000_003 + j) ** 3 % 1_000_000_007)
        total += sum(values)
    return total


if __name__ == "__main__":
    print(crunch(int(sys.argv[1]) if len(sys.argv) > 1 else 400))
