"""CPU-bound asyncio for the task-attribution cost: two named tasks ("a", "b")
spinning and yielding (`await asyncio.sleep(0)`) for argv[1] seconds."""
import asyncio, sys, time
END = time.monotonic() + float(sys.argv[1])
def spin():
    x = 0
    for i in range(20000):
        x += i * i
async def work():
    while time.monotonic() < END:
        spin()
        await asyncio.sleep(0)
async def main():
    async with asyncio.TaskGroup() as tg:
        tg.create_task(work(), name="a")
        tg.create_task(work(), name="b")
asyncio.run(main())
