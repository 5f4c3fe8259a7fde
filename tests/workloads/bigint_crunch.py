"""Big-integer arithmetic: CPython's multiply, power and division of large
ints call PyErr_CheckSignals() in their loops (SIGCHECK in
Objects/longobject.c), a couple of times per operation here. The signal
checks benchmark's work (bench/signal_checks.py).

Prints one JSON line: the wall and CPU seconds the work itself took
(interpreter start-up and the tracer's attach are not included).

Usage: bigint_crunch.py [ROUNDS] (2,000 operations each)
"""
import json
import sys
import time


def crunch(rounds):
    total = 0
    for i in range(rounds):
        values = []
        for j in range(2000):
            values.append((i * 1_000_003 + j) ** 3 % 1_000_000_007)
        total += sum(values)
    return total


rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 400
wall, cpu = time.perf_counter(), time.process_time()
crunch(rounds)
print(json.dumps({"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu}))
