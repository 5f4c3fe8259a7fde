"""Kernel events in C code, for the native frames on their stacks: a fork
made by the test's C extension (`spin.fork_child`, its child leaving at
once) and a signal delivered while the extension spins
(`spin.spin_until_signal`), sent by a child once the spinning has begun
and handled in Python. Prints "ready PID" once the extension is loaded
and does it all at the first line of its input (the test attaches the
tracer in between). Writes what it knows as JSON to argv[2], prints
"done" and exits at the next line (the tracer is stopped while it lives,
so every stack can still be read from its memory)."""

import json
import os
import signal
import sys

sys.path.insert(0, sys.argv[1])
import spin  # noqa: E402


class Stop(Exception):
    pass


def on_usr1(signum, frame):
    raise Stop


def fork_in_c():
    return spin.fork_child()


def spin_in_c():
    ready_r, ready_w = os.pipe()
    sender = os.fork()
    if sender == 0:
        # The signal goes once the parent spins in C.
        os.read(ready_r, 1)
        os.kill(os.getppid(), signal.SIGUSR1)
        os._exit(0)
    try:
        spin.spin_until_signal(ready_w)
    except Stop:
        pass
    os.waitpid(sender, 0)
    return sender


def main():
    signal.signal(signal.SIGUSR1, on_usr1)
    print(f"ready {os.getpid()}", flush=True)
    sys.stdin.readline()
    child = fork_in_c()
    sender = spin_in_c()
    with open(sys.argv[2], "w") as out:
        json.dump({"c_child": child, "sender": sender, "pid": os.getpid()}, out)
    print("done", flush=True)
    sys.stdin.readline()


if __name__ == "__main__":
    main()
