"""The main thread starts two workers and waits in `Thread.join` while they
run: an off-CPU stack whose outermost frame is this script's `<module>`.
Written so that `site.py`'s module code object, freed after start-up, is
likely to leave its address to one of this script's code objects (the
stale-cache case of CPython 3.8 and 3.9).

Usage: python_join.py"""

import threading
import time


def spin(seconds):
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def worker():
    spin(0.1)
    time.sleep(0.3)


threads = [threading.Thread(target=worker) for _ in range(2)]
for t in threads:
    t.start()
for t in threads:
    t.join()  # the main thread waits here
spin(0.1)
