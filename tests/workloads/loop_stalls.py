"""An asyncio event loop with known stalls. In turn, each in an iteration
of its own (an `await asyncio.sleep(0.05)` between them): `blocking_cpu`
burns 0.4 s of CPU and `blocking_sleep` calls `time.sleep(0.3)`, twice
each, without awaiting; each measures how long it held the loop. With
`await-only`, tasks that only await for 1 s. Writes the facts as JSON to
FACTS: the blocks' durations in ns, in order.

Usage: loop_stalls.py FACTS [await-only]"""

import asyncio
import json
import sys
import time

FACTS = sys.argv[1]
AWAIT_ONLY = sys.argv[2:] == ["await-only"]


def blocking_cpu():
    end = time.thread_time() + 0.4
    while time.thread_time() < end:
        pass


def blocking_sleep():
    time.sleep(0.3)


async def awaiting(n):
    for _ in range(n):
        await asyncio.sleep(0.01)


async def main():
    blocks = []
    if AWAIT_ONLY:
        await asyncio.gather(*(awaiting(100) for _ in range(5)))
    else:
        for block in [blocking_cpu, blocking_sleep, blocking_cpu, blocking_sleep]:
            await asyncio.sleep(0.05)
            start = time.perf_counter_ns()
            block()
            blocks.append(time.perf_counter_ns() - start)
        await asyncio.sleep(0.05)
    with open(FACTS, "w") as f:
        json.dump({"blocks_ns": blocks}, f)


asyncio.run(main())
