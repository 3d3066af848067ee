"""The minimal RTMP player against a scripted server: chunking, refusals, pings, a closed server.

Against real nginx-rtmp it runs in tests/test_real_ingest.py (every publish there starts a pull).
"""

import asyncio
import struct

import pytest

from media_gateway.ingest.rtmp_client import RtmpError, RtmpPlayer, amf_decode, amf_encode


def chunks(csid: int, type_id: int, stream_id: int, payload: bytes, size: int = 128) -> bytes:
    """One message as a server writes it: fmt 0 header, then fmt 3 continuations every `size` bytes."""
    out = bytes((csid,)) + bytes(3) + len(payload).to_bytes(3, "big") + bytes((type_id,)) + struct.pack("<I", stream_id)
    for offset in range(0, len(payload), size):
        if offset:
            out += bytes((0xC0 | csid,))
        out += payload[offset:offset + size]
    return out


class ScriptedServer:
    """Just enough of an RTMP server: handshake, connect, createStream, play, then a ping."""

    def __init__(self, *, play_status: str = "NetStream.Play.Start", ping: bool = True, close_after: bool = False):
        self.play_status = play_status
        self.ping = ping
        self.close_after = close_after
        self.commands: list[list[object]] = []
        self.pong = asyncio.get_running_loop().create_future()
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def read_message(self, reader) -> tuple[int, bytes]:
        # the client writes fmt 0 headers and one chunk per message (chunk size 4096 announced)
        header = await reader.readexactly(12)
        length = int.from_bytes(header[4:7], "big")
        return header[7], await reader.readexactly(length)

    async def handle(self, reader, writer):
        c0c1 = await reader.readexactly(1 + 1536)
        assert c0c1[0] == 3 and c0c1[5:9] == bytes(4)  # the "old" handshake, no digest
        s1 = bytes(1536)
        writer.write(b"\x03" + s1 + c0c1[1:])
        assert await reader.readexactly(1536) == s1  # C2 echoes S1
        type_id, payload = await self.read_message(reader)
        assert type_id == 1 and struct.unpack(">I", payload)[0] == 4096  # set chunk size
        while True:
            type_id, payload = await self.read_message(reader)
            if type_id == 4:  # the ping answer
                self.pong.set_result(payload)
                break
            command = amf_decode(payload)
            self.commands.append(command)
            if command[0] == "connect":
                # a long answer at the default chunk size of 128: continuation chunks
                info = {"fmsVer": "FMS/3,0,1,123", "capabilities": 31.0, "padding": "x" * 300}
                writer.write(chunks(3, 20, 0, amf_encode("_result", command[1], info,
                                                         {"level": "status", "code": "NetConnection.Connect.Success"})))
                writer.write(chunks(2, 1, 0, struct.pack(">I", 4096)))  # from now on 4096-byte chunks
            elif command[0] == "createStream":
                writer.write(chunks(3, 20, 0, amf_encode("_result", command[1], None, 1.0)))
            elif command[0] == "play":
                writer.write(chunks(2, 4, 0, struct.pack(">HI", 0, 1)))  # StreamBegin
                level = "error" if "NotFound" in self.play_status else "status"
                writer.write(chunks(5, 20, 1, amf_encode("onStatus", 0.0, None,
                                                         {"level": level, "code": self.play_status})))
            elif command[0] == "pause":
                if self.close_after:
                    writer.close()
                    return
                if self.ping:
                    writer.write(chunks(2, 4, 0, struct.pack(">HI", 6, 123456)))  # PingRequest
            await writer.drain()

    def close(self):
        self.server.close()


async def test_plays_pauses_and_answers_pings():
    server = ScriptedServer()
    port = await server.start()
    try:
        player = await RtmpPlayer.play("127.0.0.1", port, "src", "abc_src", timeout=3)
        pong = await asyncio.wait_for(server.pong, 3)  # the server pings once it saw the pause
        assert pong == struct.pack(">HI", 7, 123456)  # PingResponse with the request's timestamp
        assert [c[0] for c in server.commands] == ["connect", "createStream", "play", "pause"]
        assert server.commands[0][2]["app"] == "src"
        assert server.commands[0][2]["tcUrl"] == f"rtmp://127.0.0.1:{port}/src"
        assert server.commands[2][3] == "abc_src"
        assert server.commands[3][3] is True  # paused: no media is wanted
        assert not player.closed
        await player.close()
        assert player.closed
    finally:
        server.close()


async def test_a_refused_play_raises():
    server = ScriptedServer(play_status="NetStream.Play.StreamNotFound")
    port = await server.start()
    try:
        with pytest.raises(RtmpError, match="StreamNotFound"):
            await RtmpPlayer.play("127.0.0.1", port, "src", "abc_src", timeout=3)
    finally:
        server.close()


async def test_a_server_closing_the_connection_ends_the_player_quietly():
    server = ScriptedServer(close_after=True)
    port = await server.start()
    try:
        player = await RtmpPlayer.play("127.0.0.1", port, "src", "abc_src", timeout=3)
        for _ in range(100):
            if player.closed:
                break
            await asyncio.sleep(0.02)
        assert player.closed
        await player.close()
    finally:
        server.close()


async def test_a_pull_closed_by_the_server_is_forgotten(media_settings):
    """Another replica released the session (dropped src): this one's held play just goes away."""
    from media_gateway.ingest.control import NginxControl
    from media_gateway.ingest.source_pull import SourcePulls

    server = ScriptedServer(close_after=True)
    port = await server.start()
    settings = media_settings.model_copy(update={"ingest_source_pull": True, "ingest_control_url": None,
                                                 "ingest_rtmp_url": f"rtmp://127.0.0.1:{port}"})
    pulls = SourcePulls(settings, NginxControl(None, "live"))
    try:
        assert await pulls.start("c" * 32, "c" * 32 + "_src")
        for _ in range(100):
            if not pulls._players:
                break
            await asyncio.sleep(0.02)
        assert not pulls.holds("c" * 32) and not pulls._players
    finally:
        server.close()
