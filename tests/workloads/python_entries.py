"""Entries from C: `sorted(..., key=key)` calls `key` from C once per item.

Prints "ready", waits for a line on stdin (the test sends it once the tracer
is attached), then makes exactly 4 x 5000 calls of `key` from C.
"""
import sys


def key(x):
    return -x


def main():
    print("ready", flush=True)
    sys.stdin.readline()
    data = list(range(5000))
    for _ in range(4):
        sorted(data, key=key)


main()
