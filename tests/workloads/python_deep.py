"""A stack deeper than the sampler's 128-frame walk: `descend` recurses
DEPTH times, then `bottom` burns SECONDS of CPU.

    python_deep.py DEPTH SECONDS
"""
import sys
import time


def bottom(seconds):
    end = time.thread_time_ns() + int(seconds * 1e9)
    while time.thread_time_ns() < end:
        pass


def descend(depth, seconds):
    if depth == 0:
        bottom(seconds)
        return
    descend(depth - 1, seconds)


def main():
    sys.setrecursionlimit(10_000)
    descend(int(sys.argv[1]), float(sys.argv[2]))


main()
