"""A pre-fork parent whose worker grows until the OOM killer kills it.

The worker moves itself into the memory cgroup argv[2] (its `cgroup.procs`;
the caller made the cgroup and set its limit), starts a thread that waits,
then appends 8 MiB bytearrays (each written to, so resident) in `grow`,
saying on a pipe how many it holds after each. The parent reaps it and
writes {"parent", "worker", "signal", "chunks", "chunk_bytes", "grow_line"}
to argv[1]: "chunks" is how many the worker held when it said so last.
"""
import json
import os
import sys
import threading

CHUNK = 8 << 20


def line_of(marker):
    """The line of this file that ends with `marker` (read before tracing)."""
    with open(__file__) as source:
        return next(n for n, text in enumerate(source, 1) if text.rstrip().endswith(marker))


def grow(report_fd):
    cache = []
    while True:
        cache.append(bytearray(b"x" * CHUNK))  # grow-line
        os.write(report_fd, len(cache).to_bytes(4, "little"))


def worker(cgroup, report_fd):
    with open(os.path.join(cgroup, "cgroup.procs"), "w") as procs:
        procs.write(str(os.getpid()))
    threading.Thread(target=threading.Event().wait, name="idle", daemon=True).start()
    grow(report_fd)


def main():
    out, cgroup = sys.argv[1], sys.argv[2]
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        worker(cgroup, write_end)
        os._exit(0)
    os.close(write_end)
    chunks = 0
    while True:
        said = os.read(read_end, 4)
        if not said:
            break
        chunks = int.from_bytes(said, "little")
    _, status = os.waitpid(pid, 0)
    with open(out, "w") as f:
        json.dump(
            {
                "parent": os.getpid(),
                "worker": pid,
                "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0,
                "chunks": chunks,
                "chunk_bytes": CHUNK,
                "grow_line": GROW_LINE,
            },
            f,
        )


GROW_LINE = line_of("# grow-line")
main()
