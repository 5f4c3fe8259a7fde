"""Large and partial writes, each byte count known:

- one os.write of 1 MiB to a file in argv[2] (whole);
- one os.write of 100,000 bytes to an empty non-blocking pipe (64 KiB
  fit: a partial write of 65,536), then one more (the pipe is full:
  EAGAIN, an error), then the pipe's reader takes it all.

Writes {"pid", "file", "large", "asked", "written", "pipe"} to argv[1].
"""
import json
import os
import sys

LARGE, ASKED = 1 << 20, 100_000


def main():
    out, directory = sys.argv[1], sys.argv[2]
    path = os.path.join(directory, "large.bin")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    large = os.write(fd, b"l" * LARGE)
    os.close(fd)
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    written = os.write(write_end, b"p" * ASKED)
    try:
        os.write(write_end, b"p")
        raise SystemExit("a full pipe took another byte")
    except BlockingIOError:
        pass
    taken = 0
    while taken < written:
        taken += len(os.read(read_end, written - taken))
    facts = {
        "pid": os.getpid(),
        "file": path,
        "large": large,
        "asked": ASKED,
        "written": written,
        "pipe": "pipe:[%d]" % os.fstat(write_end).st_ino,
    }
    with open(out, "w") as f:
        json.dump(facts, f)


main()
