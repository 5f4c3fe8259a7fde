"""Memory grown on known lines by two threads.

The main thread keeps 48 1-MiB bytearrays made in `grow_main`, a second
thread 16 made in `grow_thread` (each written to at its creation, so
faulted in there). Then it writes {"pid", "main_line", "thread_line",
"main_bytes", "thread_bytes", "maxrss_bytes", "minflt"} to argv[1]: the
lines, what each kept, and the process's own getrusage figures at its end.
"""
import json
import os
import resource
import sys
import threading

MIB = 1 << 20
KEEP = []


def line_of(marker):
    """The line of this file that ends with `marker` (read before tracing)."""
    with open(__file__) as source:
        return next(n for n, text in enumerate(source, 1) if text.rstrip().endswith(marker))


def grow_main(mib):
    for _ in range(mib):
        KEEP.append(bytearray(MIB))  # main-line


def grow_thread(mib):
    for _ in range(mib):
        KEEP.append(bytearray(MIB))  # thread-line


def main():
    out = sys.argv[1]
    lines = line_of("# main-line"), line_of("# thread-line")
    grow_main(48)
    thread = threading.Thread(target=grow_thread, args=(16,))
    thread.start()
    thread.join()
    facts = {
        "pid": os.getpid(),
        "main_line": lines[0],
        "thread_line": lines[1],
        "main_bytes": 48 * MIB,
        "thread_bytes": 16 * MIB,
    }
    # Written first, then the figures: the file's own pages are in them.
    with open(out, "w") as f:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        facts["maxrss_bytes"] = usage.ru_maxrss * 1024
        facts["minflt"] = usage.ru_minflt
        f.write(json.dumps(facts))


main()
