"""Two named CPU-bound asyncio tasks of known, different work.

"heavy" runs 3 times the rounds "light" runs; every round spins a loop in
the task's own function and then yields (`await asyncio.sleep(0)`), so the
two interleave on one event loop. Each round's length is drawn at random
(seeded, the same draws for both tasks' functions): rounds of one fixed
length make a heavy+light cycle of about 1 ms, the sampler's period at
999 Hz, and the ticks then lock onto one task's phase for seconds. Prints "ready PID" once asyncio
is imported and its loop runs, waits for "go" (or end of input) on
standard input, runs the tasks, then writes the rounds each ran and the
CPU time each took as JSON to the file named by argv[1] and prints "done".
"""

import asyncio
import json
import random
import sys
import time

ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 300
SPIN = (5000, 35000)
draws = random.Random(45)


def heavy_spin():
    x = 0
    for i in range(draws.randint(*SPIN)):
        x += i * i
    return x


def light_spin():
    x = 0
    for i in range(draws.randint(*SPIN)):
        x += i * i
    return x


cpu = {"heavy": 0, "light": 0}


async def work(name, spin, rounds):
    for _ in range(rounds):
        start = time.thread_time_ns()
        spin()
        cpu[name] += time.thread_time_ns() - start
        await asyncio.sleep(0)


async def main():
    loop = asyncio.get_running_loop()
    print(f"ready {__import__('os').getpid()}", flush=True)
    # The "go" is read off the loop: the tasks start once it comes.
    await loop.run_in_executor(None, sys.stdin.readline)
    async with asyncio.TaskGroup() as tg:
        tg.create_task(work("heavy", heavy_spin, 3 * ROUNDS), name="heavy")
        tg.create_task(work("light", light_spin, ROUNDS), name="light")


asyncio.run(main())
with open(sys.argv[1], "w") as out:
    json.dump({"rounds": {"heavy": 3 * ROUNDS, "light": ROUNDS}, "cpu_ns": cpu}, out)
print("done", flush=True)
