"""Let viewers that speak `foxglove.websocket.v1` reach the foxglove-sdk server. Pure Python.

foxglove-sdk 0.30 accepts only the subprotocols `foxglove.sdk.v1`/`v1.1` and answers
HTTP 400 to a client offering only `foxglove.websocket.v1`: Foxglove Studio 1.x, every
client on `@foxglove/ws-protocol` and Lichtblick before its December 2025 release. The
messages after the handshake are the same protocol, and the SDK has no option for the
name, so this listener sits in front of it: it renames the offered subprotocol in the
client's HTTP upgrade request, names the client's own choice in the server's answer, then
copies bytes both ways without parsing a frame. A client that already offers an SDK name
passes untouched.
"""

from __future__ import annotations

import asyncio
import socket
import threading

LEGACY = "foxglove.websocket.v1"
SDK_NAMES = ("foxglove.sdk.v1", "foxglove.sdk.v1.1")
HEADER = b"sec-websocket-protocol"
MAX_HEAD = 64 * 1024  # an upgrade request or answer head is a few hundred bytes


def _split_head(data: bytes) -> tuple[list[bytes], bytes]:
    head, _, rest = data.partition(b"\r\n\r\n")
    return head.split(b"\r\n"), rest


def _offered(lines: list[bytes]) -> list[str]:
    names: list[str] = []
    for line in lines[1:]:
        key, sep, value = line.partition(b":")
        if sep and key.strip().lower() == HEADER:
            names += [n.strip() for n in value.decode("latin-1").split(",") if n.strip()]
    return names


def rename_request(head: bytes) -> tuple[bytes, bool]:
    """The client's upgrade request as the SDK accepts it; True when it was renamed."""
    lines, rest = _split_head(head)
    offered = _offered(lines)
    if LEGACY not in offered or any(n in SDK_NAMES for n in offered):
        return head, False
    out = [lines[0]] + [line for line in lines[1:]
                        if line.partition(b":")[0].strip().lower() != HEADER]
    out.append(b"Sec-WebSocket-Protocol: " + SDK_NAMES[0].encode())
    return b"\r\n".join(out) + b"\r\n\r\n" + rest, True


def rename_response(head: bytes) -> bytes:
    """The server's answer with the subprotocol the legacy client asked for."""
    lines, rest = _split_head(head)
    out = [lines[0]]
    for line in lines[1:]:
        if line.partition(b":")[0].strip().lower() == HEADER:
            line = b"Sec-WebSocket-Protocol: " + LEGACY.encode()
        out.append(line)
    return b"\r\n".join(out) + b"\r\n\r\n" + rest


async def _read_head(reader: asyncio.StreamReader) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await reader.read(4096)
        if not chunk:
            break
        data += chunk
        if len(data) > MAX_HEAD:
            raise ValueError("HTTP head too long")
    return data


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


class SubprotocolAdapter:
    """Listens on (host, port) and relays every connection to the SDK server on
    127.0.0.1:upstream_port, renaming `foxglove.websocket.v1` in the handshake."""

    def __init__(self, host: str, port: int, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        # Bound here, in the caller's thread, so "address in use" is the caller's error.
        self._sock = socket.create_server((host, port))
        self.port = self._sock.getsockname()[1]
        self.renamed = 0  # connections that offered only the legacy name
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="foxglove-adapter", daemon=True)
        self._started = threading.Event()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    def start(self) -> SubprotocolAdapter:
        self._thread.start()
        self._started.wait(5.0)
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def serve() -> None:
            self._server = await asyncio.start_server(self._relay, sock=self._sock)
            self._started.set()

        self._loop.run_until_complete(serve())
        self._loop.run_forever()
        self._loop.close()

    async def _relay(self, c_reader: asyncio.StreamReader,
                     c_writer: asyncio.StreamWriter) -> None:
        self._writers.add(c_writer)
        s_writer: asyncio.StreamWriter | None = None
        try:
            head = await _read_head(c_reader)
            if not head:  # a port probe: nothing for the server to refuse
                return
            s_reader, s_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
            self._writers.add(s_writer)
            request, renamed = rename_request(head)
            s_writer.write(request)
            await s_writer.drain()
            answer = await _read_head(s_reader)
            if renamed:
                self.renamed += 1
                answer = rename_response(answer)
            c_writer.write(answer)
            await c_writer.drain()
            await asyncio.gather(_pipe(c_reader, s_writer), _pipe(s_reader, c_writer))
        except (ConnectionError, OSError, ValueError, asyncio.CancelledError):
            pass  # a viewer gone, or the bridge stopping: both ends are closed below
        finally:
            for w in (c_writer, s_writer):
                if w is not None:
                    w.close()
                    self._writers.discard(w)

    def stop(self) -> None:
        if not self._thread.is_alive():
            self._sock.close()
            return

        async def close() -> None:
            if self._server is not None:
                self._server.close()
            # open connections end with it (a viewer reconnects to the next server): closed
            # sockets end their relays; what is still running after 0.5 s is cancelled
            for w in list(self._writers):
                w.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            if tasks:
                _, pending = await asyncio.wait(tasks, timeout=0.5)
                for t in pending:
                    t.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
            self._loop.stop()

        asyncio.run_coroutine_threadsafe(close(), self._loop)
        self._thread.join(5.0)
        self._sock.close()
