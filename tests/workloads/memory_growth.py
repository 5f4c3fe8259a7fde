"""Memory grown on known lines by two threads.

The main thread keeps 48 1-MiB bytearrays made in `grow_main`, a second
thread 16 made in `grow_thread` (each written to at its creation, so
faulted in there). Then it writes {"pid", "main_line", "thread_line",
"main_bytes", "thread_bytes", "resident_at_start", "maxrss_bytes", "minflt",
"huge_pages", "huge_pages_in_thread"} to
argv[1]: the lines, what each kept, the process's own getrusage figures at
its end, and the kernel's transparent huge page counts over its run with
the mappings its huge pages are in (a huge page maps 512 pages at once),
at its end and as the second thread ended its growth.
"""
import json
import os
import resource
import sys
import threading

MIB = 1 << 20
KEEP = []
IN_THREAD = {}


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
    # Before the thread's stack and arena go (with any huge page in them).
    IN_THREAD.update(huge_pages())


def huge_pages():
    """The node's THP counters (/proc/vmstat), and this process's mappings
    holding huge pages (/proc/self/smaps)."""
    counters = {}
    with open("/proc/vmstat") as f:
        for row in f:
            name, value = row.split()
            if name.startswith("thp_fault") or name.startswith("thp_collapse"):
                counters[name] = int(value)
    mappings, mapping = [], None
    with open("/proc/self/smaps") as f:
        for row in f:
            fields = row.split()
            if "-" in fields[0] and not fields[0].endswith(":"):
                mapping = row.strip()
            elif fields[0] == "AnonHugePages:" and fields[1] != "0":
                mappings.append("%s: %s kB" % (mapping, fields[1]))
    with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
        mode = f.read().split("[")[1].split("]")[0]
    with open("/proc/self/status") as f:
        rss = [row.split(":")[0] + row.split(":")[1].strip() for row in f if row.startswith("Rss")]
    return {"mode": mode, "counters": counters, "mappings": mappings, "rss": rss}


def main():
    out = sys.argv[1]
    before = huge_pages()["counters"]
    with open("/proc/self/statm") as f:
        resident_at_start = int(f.read().split()[1]) * resource.getpagesize()
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
        "resident_at_start": resident_at_start,
    }
    # Written first, then the figures: the file's own pages are in them.
    with open(out, "w") as f:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        facts["maxrss_bytes"] = usage.ru_maxrss * 1024
        facts["minflt"] = usage.ru_minflt
        huge = huge_pages()
        huge["counters"] = {k: v - before.get(k, 0) for k, v in huge["counters"].items()}
        facts["huge_pages"] = huge
        facts["huge_pages_in_thread"] = IN_THREAD
        f.write(json.dumps(facts))


main()
