"""Memory grown on known lines by two threads.

The main thread keeps 48 1-MiB bytearrays made in `grow_main`, a second
thread 16 made in `grow_thread` (each written to at its creation, so
faulted in there). Then it writes {"pid", "main_line", "thread_line",
"main_bytes", "thread_bytes", "resident_at_start", "maxrss_bytes", "minflt",
"huge_pages", "huge_pages_in_thread", "arrays", "thread_huge_bytes"} to
argv[1]: the lines, what each kept, the process's own getrusage figures at
its end, and the kernel's transparent huge page counts over its run with
the mappings its huge pages are in and the 2 MiB blocks they map (a huge
page maps 512 pages at once), at its end and as the second thread ended
its growth (with its stack pointer then), where each thread's arrays
are, and what huge pages the second thread's run mapped outside them.

Those are its stack's: on kernels before 6.7 (which map no huge page in a
MAP_STACK mapping) a thread's stack, merged with the arrays above it, gets
a huge page when the thread's first frames reach a 2 MiB block wholly in
it (on about 1 run in 14), and the line running then grew the resident
memory by 512 pages at once.
"""
import json
import os
import struct
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
    # Its stack pointer, in the syscall reading it (the last field but one).
    with open("/proc/thread-self/syscall") as f:
        IN_THREAD["stack_pointer"] = f.read().split()[-2]


def huge_blocks(mappings):
    """The 2 MiB blocks of `mappings` (smaps rows) a huge page maps: their
    first page's frame is flagged THP (/proc/kpageflags; root only), and
    why they could not all be read (None when they could)."""
    blocks, huge = [], 2 * MIB
    try:
        with open("/proc/self/pagemap", "rb") as pagemap, open("/proc/kpageflags", "rb") as flags:
            for mapping in mappings:
                start, end = (int(a, 16) for a in mapping.split()[0].split("-"))
                block = (start + huge - 1) & ~(huge - 1)
                while block + huge <= end:
                    pagemap.seek(block // resource.getpagesize() * 8)
                    entry = struct.unpack("Q", pagemap.read(8))[0]
                    if entry >> 63:
                        flags.seek((entry & ((1 << 55) - 1)) * 8)
                        if struct.unpack("Q", flags.read(8))[0] & (1 << 22):
                            blocks.append("%x" % block)
                    block += huge
    except OSError as e:
        return blocks, str(e)
    return blocks, None


def huge_pages():
    """The node's THP counters (/proc/vmstat), and this process's mappings
    holding huge pages (/proc/self/smaps) and the blocks they map."""
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
    blocks, blocks_error = huge_blocks(mappings)
    return {"mode": mode, "counters": counters, "mappings": mappings,
            "blocks": blocks, "blocks_error": blocks_error, "rss": rss}


def huge_beside(blocks, before, arrays):
    """Bytes of the huge pages in `blocks` (addresses) not in `before` and
    holding no byte of `arrays` (their buffers' addresses)."""
    huge = 2 * MIB
    starts = [int(a, 16) for a in arrays]
    beside = [b for b in (int(b, 16) for b in set(blocks) - set(before))
              if not any(a < b + huge and b < a + MIB for a in starts)]
    return len(beside) * huge


def arrays():
    """Where the main thread's arrays are, and the second's (ctypes is
    imported only now: it maps memory of its own)."""
    import ctypes

    at = ["%x" % ctypes.addressof((ctypes.c_char * 1).from_buffer(a)) for a in KEEP]
    return {"main": at[:48], "thread": at[48:]}


def main():
    out = sys.argv[1]
    before = huge_pages()["counters"]
    with open("/proc/self/statm") as f:
        resident_at_start = int(f.read().split()[1]) * resource.getpagesize()
    lines = line_of("# main-line"), line_of("# thread-line")
    grow_main(48)
    before_thread = huge_pages()["blocks"]
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
        "arrays": arrays(),
    }
    facts["thread_huge_bytes"] = huge_beside(IN_THREAD["blocks"], before_thread,
                                             facts["arrays"]["main"] + facts["arrays"]["thread"])
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
# Gone without freeing its 64 arrays one by one: on emulated arm64 each
# munmap's page-by-page TLB flushes made that take 88 s (the process's
# exit drops the whole address space at once).
os._exit(0)
