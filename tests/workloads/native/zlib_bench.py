"""Fixed C-heavy work for the native-frames benchmark: zlib's deflate
under one Python function (zlib_loop.py's), ROUNDS times.

Prints one JSON line: the wall and CPU seconds the work itself took
(interpreter start-up and the profiler's attach are not included).

Usage: zlib_bench.py [ROUNDS]
"""
import json
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from zlib_loop import compress_loop  # noqa: E402

if __name__ == "__main__":
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    wall, cpu = time.perf_counter(), time.process_time()
    compress_loop(rounds)
    print(json.dumps({
        "wall_s": time.perf_counter() - wall,
        "cpu_s": time.process_time() - cpu,
    }))
