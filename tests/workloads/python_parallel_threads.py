"""Three threads burn CPU in their own function at the same time (in a
free-threaded build they really run in parallel).

    python_parallel_threads.py OUT SECONDS

OUT gets {"threads": {name: {"tid", "cpu_ns", "function"}}, "wall_ns"}:
each thread's own CPU time in its burn (thread CPU clock).
"""

import json
import sys
import threading
import time


def spin(seconds):
    end = time.thread_time_ns() + int(seconds * 1e9)
    n = 0
    while time.thread_time_ns() < end:
        n += 1
    return n


def burn_alpha(seconds):
    spin(seconds)


def burn_beta(seconds):
    spin(seconds)


def burn_gamma(seconds):
    spin(seconds)


def main():
    out, seconds = sys.argv[1], float(sys.argv[2])
    functions = [burn_alpha, burn_beta, burn_gamma]
    start = threading.Barrier(len(functions))
    results = {}

    def run(function):
        start.wait()
        begin = time.thread_time_ns()
        function(seconds)
        results[function.__name__] = {
            "tid": threading.get_native_id(),
            "function": function.__name__,
            "cpu_ns": time.thread_time_ns() - begin,
        }

    threads = [threading.Thread(target=run, args=(f,)) for f in functions]
    wall = time.perf_counter_ns()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter_ns() - wall
    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    with open(out, "w") as f:
        json.dump({"threads": results, "wall_ns": wall, "gil": gil}, f)


if __name__ == "__main__":
    main()
