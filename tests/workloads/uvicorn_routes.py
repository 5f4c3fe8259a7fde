"""A starlette app served by uvicorn on an asyncio loop (h11), with the
routes of gunicorn_routes.py: CPU (`/cpu/N`), a slow "database" on a
local TCP socket, awaited (`/db/N`, TRACER_TEST_DB=host:port), a file read
in 1 KiB chunks (`/file`, TRACER_TEST_FILE), an awaited sleep (`/sleep`),
nothing (`/fast`), and errors (`/missing` 404, `/boom` 500). Uvicorn logs
"Uvicorn running on" to standard error once it listens; SIGINT stops it.

Usage: uvicorn_routes.py PORT"""

import asyncio
import sys

import uvicorn
import uvicorn.lifespan.on  # noqa: F401
import uvicorn.loops.asyncio  # noqa: F401
import uvicorn.protocols.http.h11_impl  # noqa: F401
import uvicorn.protocols.websockets.auto  # noqa: F401
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from http_routes import cpu_heavy, db_address, read_file

async def cpu(request):
    cpu_heavy(0.01)
    return PlainTextResponse("ok\n")


async def db(request):
    reader, writer = await asyncio.open_connection(*db_address())
    writer.write(b"select\n")
    await reader.readline()
    writer.close()
    await writer.wait_closed()
    return PlainTextResponse("ok\n")


async def file(request):
    read_file()
    return PlainTextResponse("ok\n")


async def sleep(request):
    await asyncio.sleep(0.02)
    return PlainTextResponse("ok\n")


async def fast(request):
    return PlainTextResponse("ok\n")


async def boom(request):
    return PlainTextResponse("boom\n", status_code=500)


app = Starlette(
    routes=[
        Route("/cpu/{n}", cpu),
        Route("/db/{n}", db),
        Route("/file", file),
        Route("/sleep", sleep),
        Route("/fast", fast),
        Route("/boom", boom),
    ]
)

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="info", access_log=False)
