"""Prints `ready PID`, waits for a line on its standard input, then execs
the command given (looked up in PATH), as the same process: a test says
go once the tracer has read the interpreter's binaries (their unwind
tables), so that the
command's samples come with native stacks from its first tick, however
loaded the machine is (the tables are read on a thread of their own).

Usage: after_go.py PROGRAM [ARG...]"""

import os
import sys

print("ready", os.getpid(), flush=True)
sys.stdin.readline()
os.execvp(sys.argv[1], sys.argv[1:])
