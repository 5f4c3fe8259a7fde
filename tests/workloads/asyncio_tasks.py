"""Named asyncio tasks held still for `--dump` and `python -m asyncio ps`.

Two event loops (the main thread's and one in a second thread), a
TaskGroup, nested awaits, tasks awaiting other tasks and tasks stuck on an
`asyncio.Event`. Prints "ready PID" once every task is suspended (each
loop reports from a `call_soon` callback queued by its last task as it
suspends: it runs only after that step ends), then waits until standard
input closes or says "go", which releases every task; prints "done".
"""

import asyncio
import os
import sys
import threading

suspended = threading.Semaphore(0)
LOOPS = 2


def report_suspended():
    suspended.release()


async def event_wait(event):
    await event.wait()


async def inner_wait(event):
    await event_wait(event)


async def stuck_on_event(event):
    await inner_wait(event)


async def child_work(event):
    await event.wait()


async def parent(event):
    child = asyncio.create_task(child_work(event), name="child")
    await child


async def last_one(event):
    # Queued now, run after this step suspends the task on the event.
    asyncio.get_running_loop().call_soon(report_suspended)
    await event.wait()


async def main(event_box):
    event = asyncio.Event()
    event_box.append((asyncio.get_running_loop(), event))
    async with asyncio.TaskGroup() as tg:
        tg.create_task(stuck_on_event(event), name="stuck-on-event")
        tg.create_task(parent(event), name="parent")
        tg.create_task(last_one(event), name="last-one")


async def other_loop(event_box):
    event = asyncio.Event()
    event_box.append((asyncio.get_running_loop(), event))
    task = asyncio.create_task(last_one(event), name="other-loop-task")
    await task


def release(events):
    for loop, event in events:
        loop.call_soon_threadsafe(event.set)


def main_thread():
    events = []
    thread = threading.Thread(
        target=lambda: asyncio.run(other_loop(events)), name="other-loop"
    )
    thread.start()

    def announce():
        for _ in range(LOOPS):
            suspended.acquire()
        print("ready", os.getpid(), flush=True)
        sys.stdin.readline()
        release(events)

    threading.Thread(target=announce, name="announce", daemon=True).start()
    asyncio.run(main(events))
    thread.join()
    print("done", flush=True)


main_thread()
