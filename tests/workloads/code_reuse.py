"""Code objects that live a moment and leave their address to the next:
GENERATIONS functions made with `exec`, run one after the other, each
freed before the next is compiled (the same source but for its name, so
the same size: the allocator hands the next one the same address). Each
spins SPIN_S seconds of CPU. Writes each generation's function name and
CLOCK_BOOTTIME window ([name, start_ns, end_ns]) to the JSON file argv[1].

Usage: code_reuse.py OUT.json"""
import json
import sys
import time

GENERATIONS = 30
SPIN_S = 0.03
SOURCE = """
def {name}(seconds):
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass
"""

windows = []
for i in range(GENERATIONS):
    name = f"gen_{i:03d}"
    scope = {"time": time}
    exec(compile(SOURCE.format(name=name), f"{name}.py", "exec"), scope)
    function = scope.pop(name)
    start = time.clock_gettime_ns(time.CLOCK_BOOTTIME)
    function(SPIN_S)
    windows.append([name, start, time.clock_gettime_ns(time.CLOCK_BOOTTIME)])
    del function, scope
with open(sys.argv[1], "w") as out:
    json.dump(windows, out)
