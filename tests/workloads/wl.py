"""Shared by the end-to-end workloads: do reads and record exactly what was
done, so the test can compare the tracer's report with the workload's own
figures.

Every helper here performs the reads *and* records the read syscalls CPython
issues for them. The buffered cases follow CPython 3.11's io module:

* ``open(p, 'rb')`` sizes its BufferedReader from ``st_blksize``; iterating
  lines refills the whole buffer each time (``_buffered_readline`` resets the
  buffer before ``_bufferedreader_fill_buffer``), so every request is
  ``st_blksize`` bytes: one per full block of data, plus the read that hits
  end of file.
* text mode (``open(p)``) iterates by ``TextIOWrapper._CHUNK_SIZE`` (8192)
  chunks through ``BufferedReader.read1``, which reads straight into the
  result: every request is 8192 bytes.
* ``open(p).read()`` ends in ``FileIO.readall``: one request of
  ``st_size - pos + 1`` bytes (or 8192 when ``st_size`` is 0, as on procfs),
  then one for what is left of that buffer, which returns 0.

The workload checks its own assumptions (e.g. that a procfs read returns a
full block until the end) and fails loudly when they do not hold, instead of
recording a figure it did not observe.

The result file is JSON: {"pid", "python", "files": [entry...], ...extra};
an entry has pid, path, syscalls, bytes, opens, errors, request_sizes,
by_syscall and optionally fs / blksize.
"""

import json
import os
import sys

PROC_STAT = "/proc/self/stat"


class Expect:
    def __init__(self):
        self.files = {}
        self.extra = {}

    def entry(self, path, pid=None):
        pid = os.getpid() if pid is None else pid
        return self.files.setdefault(
            (pid, path),
            {
                "pid": pid,
                "path": path,
                "syscalls": 0,
                "bytes": 0,
                "opens": 0,
                "errors": 0,
                "request_sizes": {},
                "by_syscall": {},
            },
        )

    def opened(self, path):
        self.entry(path)["opens"] += 1

    def read(self, path, request, got, syscall="read"):
        e = self.entry(path)
        e["syscalls"] += 1
        e["bytes"] += got
        key = str(request)
        e["request_sizes"][key] = e["request_sizes"].get(key, 0) + 1
        e["by_syscall"][syscall] = e["by_syscall"].get(syscall, 0) + 1

    def describe(self, path, **fields):
        """Known facts about the file (fs, blksize) the report must show."""
        self.entry(path).update(fields)

    def write(self, out):
        data = {
            "pid": os.getpid(),
            "python": sys.version,
            "executable": sys.executable,
            "files": list(self.files.values()),
        }
        data.update(self.extra)
        with open(out, "w") as f:
            json.dump(data, f, indent=1)


def check(condition, message):
    if not condition:
        sys.exit(f"workload assumption failed: {message}")


def blocks(n, size):
    """Full-block requests needed for n bytes, plus the one that sees EOF."""
    return -(-n // size) + 1


# --- unbuffered -----------------------------------------------------------


def os_reads(ex, path, count, size):
    """`count` os.read(fd, size) on one descriptor (an open, then the reads)."""
    fd = os.open(path, os.O_RDONLY)
    ex.opened(path)
    for _ in range(count):
        got = len(os.read(fd, size))
        ex.read(path, size, got)
    os.close(fd)


def os_preads(ex, path, count, size):
    fd = os.open(path, os.O_RDONLY)
    ex.opened(path)
    for _ in range(count):
        got = len(os.pread(fd, size, 0))
        ex.read(path, size, got, "pread64")
    os.close(fd)


def os_readvs(ex, path, count, sizes, positional=False):
    """readv (or preadv at offset 0) with one buffer per entry of `sizes`."""
    fd = os.open(path, os.O_RDONLY)
    ex.opened(path)
    for _ in range(count):
        buffers = [bytearray(s) for s in sizes]
        if positional:
            # CPython calls preadv2(2) here; the tracer counts it as preadv.
            got = os.preadv(fd, buffers, 0)
        else:
            got = os.readv(fd, buffers)
        ex.read(path, sum(sizes), got, "preadv" if positional else "readv")
    os.close(fd)


# --- buffered -------------------------------------------------------------


def binary_lines(ex, path):
    """open(path, 'rb') and iterate its lines. Returns the request size."""
    with open(path, "rb") as f:
        ex.opened(path)
        blksize = os.fstat(f.fileno()).st_blksize
        check(blksize > 1, f"{path}: st_blksize {blksize}")
        n = sum(len(line) for line in f)
    check(n > 0, f"{path} is empty")
    for i in range(blocks(n, blksize)):
        got = max(0, min(blksize, n - i * blksize))
        ex.read(path, blksize, got)
    return blksize


def text_lines(ex, path):
    """open(path) (text mode) and iterate its lines. Returns the chunk size."""
    with open(path, encoding="ascii") as f:
        ex.opened(path)
        chunk = f._CHUNK_SIZE
        n = sum(len(line) for line in f)  # ASCII: characters are bytes
    check(n > 0, f"{path} is empty")
    for i in range(blocks(n, chunk)):
        got = max(0, min(chunk, n - i * chunk))
        ex.read(path, chunk, got)
    return chunk


def text_read_all(ex, path):
    """open(path).read(): FileIO.readall sizes its buffer from st_size."""
    with open(path, encoding="ascii") as f:
        ex.opened(path)
        st_size = os.fstat(f.fileno()).st_size
        n = len(f.read())
    first = st_size + 1 if st_size > 0 else 8192  # SMALLCHUNK
    check(n < first, f"{path}: {n} bytes do not fit the first readall buffer")
    ex.read(path, first, n)
    ex.read(path, first - n, 0)


def write_data_file(ex, path, lines, width=63):
    """An ASCII file of `lines` lines of `width` characters plus a newline.
    Opening it to write counts as an open of that path too."""
    with open(path, "w", encoding="ascii") as f:
        ex.opened(path)
        for i in range(lines):
            f.write(f"{i:0{width}d}\n")
    return os.stat(path).st_size
