"""A starlette app served by uvicorn on an asyncio loop (h11), as a
service is run: `GET /block?ms=N` burns N ms of CPU in `render_rows`
without awaiting (it freezes the loop for every other request) and
records how long it held the loop; `GET /await?ms=N` awaits
`asyncio.sleep`; `GET /facts` answers `{"pid", "blocks_ns"}`. Everything
is imported before the loop starts. Uvicorn logs "Uvicorn running on" to
standard error once it listens; SIGINT stops it.

Usage: uvicorn_app.py PORT"""

import asyncio
import os
import sys
import time

import uvicorn
# What uvicorn would import inside the loop as it starts (a stall of its
# own on a slow machine): the HTTP protocol, the lifespan, the loop setup.
import uvicorn.lifespan.on  # noqa: F401
import uvicorn.loops.asyncio  # noqa: F401
import uvicorn.protocols.http.h11_impl  # noqa: F401
import uvicorn.protocols.websockets.auto  # noqa: F401
from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

BLOCKS = []


def render_rows(ms):
    end = time.thread_time() + ms / 1000
    rows = 0
    while time.thread_time() < end:
        rows += 1
    return rows


async def block(request):
    ms = int(request.query_params["ms"])
    start = time.perf_counter_ns()
    render_rows(ms)
    BLOCKS.append(time.perf_counter_ns() - start)
    return PlainTextResponse("blocked\n")


async def wait(request):
    await asyncio.sleep(int(request.query_params["ms"]) / 1000)
    return PlainTextResponse("awaited\n")


async def facts(request):
    return JSONResponse({"pid": os.getpid(), "blocks_ns": BLOCKS})


app = Starlette(
    routes=[
        Route("/block", block),
        Route("/await", wait),
        Route("/facts", facts),
    ]
)

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="info")
