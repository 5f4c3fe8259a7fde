"""Fixed allocation-heavy work for the memory-growth benchmark.

Each round builds 100,000 small dicts (pymalloc's arenas) and 256 64-KiB
bytearrays (malloc), then drops them: the memory is faulted in afresh
every round (pymalloc and malloc hand emptied arenas and large blocks back
to the kernel). Prints one JSON line: the wall and CPU seconds the work
itself took, and the minor faults it made.

Usage: python_bench_alloc.py [ROUNDS]
"""
import json
import resource
import sys
import time


def one_round():
    rows = [{"id": i, "name": str(i), "tags": [i, i + 1]} for i in range(100_000)]
    blobs = [bytearray(64 << 10) for _ in range(256)]
    return len(rows) + len(blobs)


if __name__ == "__main__":
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    faults0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    w0, c0 = time.perf_counter(), time.process_time()
    for _ in range(rounds):
        one_round()
    w1, c1 = time.perf_counter(), time.process_time()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults0
    print(json.dumps({"wall_s": w1 - w0, "cpu_s": c1 - c0, "minflt": faults}), flush=True)
