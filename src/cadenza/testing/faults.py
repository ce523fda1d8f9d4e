"""Database faults for tests: a TCP proxy on 127.0.0.1 that can be cut.

``CutProxy`` forwards connections to a database server. ``cut()`` closes every
connection through it and makes new ones close as soon as they open, as a crashed
or unreachable server does; ``restore()`` lets connections through again. Clients
see the real driver errors (a connection lost mid-query, refused on connect).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

_CHUNK = 64 * 1024


class CutProxy:
    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._pumps: set[asyncio.Task[None]] = set()
        self.is_cut = False
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def cut(self) -> None:
        """Drop every connection and refuse new ones until ``restore()``."""
        self.is_cut = True
        for writer in list(self._open):
            writer.transport.abort()
        self._open.clear()

    def restore(self) -> None:
        self.is_cut = False

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for pump in list(self._pumps):
            pump.cancel()
        await asyncio.gather(*self._pumps, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.is_cut:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        self._open |= {writer, up_writer}
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            pump = asyncio.create_task(self._pump(source, sink, (writer, up_writer)))
            self._pumps.add(pump)
            pump.add_done_callback(self._pumps.discard)

    async def _pump(
        self,
        source: asyncio.StreamReader,
        sink: asyncio.StreamWriter,
        pair: tuple[asyncio.StreamWriter, asyncio.StreamWriter],
    ) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await source.read(_CHUNK):
                sink.write(data)
                await sink.drain()
        for writer in pair:
            self._open.discard(writer)
            writer.transport.abort()


@contextlib.asynccontextmanager
async def cut_proxy(host: str, port: int) -> AsyncIterator[CutProxy]:
    """A started ``CutProxy`` to ``host:port``, closed on exit."""
    proxy = CutProxy(host, port)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.close()
