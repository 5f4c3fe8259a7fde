"""Writes to a pipe whose read end is closed: the kernel sends SIGPIPE.

First with Python's default disposition (SIG_IGN: the write fails with EPIPE
and the signal is ignored), then with a handler installed (delivered to it).
Writes {"pid", "epipe", "handled"} to argv[1].
"""
import json
import os
import signal
import sys

handled = 0


def on_pipe(signum, frame):
    global handled
    handled += 1


def write_to_closed_pipe():
    r, w = os.pipe()
    os.close(r)
    try:
        os.write(w, b"x")
    except BrokenPipeError:
        return 1
    finally:
        os.close(w)
    return 0


assert signal.getsignal(signal.SIGPIPE) == signal.SIG_IGN
epipe = write_to_closed_pipe()
signal.signal(signal.SIGPIPE, on_pipe)
epipe += write_to_closed_pipe()

with open(sys.argv[1], "w") as out:
    json.dump({"pid": os.getpid(), "epipe": epipe, "handled": handled}, out)
