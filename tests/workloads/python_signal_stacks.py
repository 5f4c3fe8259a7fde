"""Sends itself N SIGUSR1 from one line of `send_signals`, with a Python
handler installed: each is delivered on the way back from kill(2), while
that line runs. Traced in attach mode: prints "ready" and waits for a line
on stdin (by then the tracer knows this thread). Writes {"pid", "sent",
"handled", "kill_line", "call_line"} to argv[1], prints "done" and waits for
another line before it exits, so that the tracer can be stopped while the
process (whose code objects the stacks point to) is still there: a stack
symbolized after the process exited would be unreadable.
"""
import json
import os
import signal
import sys

N = 7
handled = 0


def line_of(marker):
    """The line of this file that ends with `marker` (read before tracing)."""
    with open(__file__) as source:
        return next(n for n, text in enumerate(source, 1) if text.rstrip().endswith(marker))


def on_usr1(signum, frame):
    global handled
    handled += 1


def send_signals(n):
    for _ in range(n):
        os.kill(os.getpid(), signal.SIGUSR1)  # kill-line


def main():
    signal.signal(signal.SIGUSR1, on_usr1)
    print("ready", flush=True)
    sys.stdin.readline()
    send_signals(N)  # call-line
    with open(sys.argv[1], "w") as out:
        json.dump(
            {
                "pid": os.getpid(),
                "sent": N,
                "handled": handled,
                "kill_line": KILL_LINE,
                "call_line": CALL_LINE,
            },
            out,
        )
    print("done", flush=True)
    sys.stdin.readline()


KILL_LINE = line_of("# kill-line")
CALL_LINE = line_of("# call-line")
main()
