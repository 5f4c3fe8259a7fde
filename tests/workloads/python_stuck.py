"""A program stuck in sleeps: a worker thread waits forever on an Event;
the main thread prints "ready PID", waits for a line on stdin, then sleeps
in `stuck` for an hour (the test kills it).
"""
import os
import sys
import threading
import time


def worker(event):
    event.wait()


def stuck():
    time.sleep(3600)


event = threading.Event()
threading.Thread(target=worker, args=(event,), daemon=True, name="waiter").start()
print(f"ready {os.getpid()}", flush=True)
sys.stdin.readline()
stuck()
