"""Two phases, one after the other, on the main thread: `first` burns
SECONDS of CPU, then `second` does. A time-ordered profile has every
sample of `first` before any of `second`.

Usage: python_phases.py SECONDS"""

import sys
import time

SECONDS = float(sys.argv[1])


def burn():
    end = time.thread_time() + SECONDS
    while time.thread_time() < end:
        pass


def first():
    burn()


def second():
    burn()


first()
second()
