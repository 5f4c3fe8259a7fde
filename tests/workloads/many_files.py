"""Reads N distinct small files, each opened once, read whole and closed;
writes what it read: the reads per file, their request size, and each
file's bytes.

Usage: many_files.py OUT.json DIR N [--create]
  --create: write the N files first (file i holds i % 200 + 1 bytes),
  untraced reads of them are then the only reads of DIR.
"""

import json
import os
import sys

out, directory, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
names = [os.path.join(directory, f"f{i:07d}") for i in range(count)]
if "--create" in sys.argv:
    for i, name in enumerate(names):
        with open(name, "wb") as f:
            f.write(b"x" * (i % 200 + 1))
    sys.exit(0)

read = {}
for name in names:
    # os.open + two os.read: the data, then the end of file (0 bytes).
    fd = os.open(name, os.O_RDONLY)
    data = os.read(fd, 4096)
    assert os.read(fd, 4096) == b""
    os.close(fd)
    read[name] = len(data)

with open(out, "w") as f:
    json.dump({"pid": os.getpid(), "reads_per_file": 2, "request": 4096, "bytes": read}, f)
