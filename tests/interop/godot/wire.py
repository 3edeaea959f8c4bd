"""WebSocket frame reading and Godot payload description, shared by the helper scripts here.

Only what a test logger needs: split a byte stream into the HTTP upgrade head and RFC 6455
frames, unmask them, and describe Godot 3.x (9-byte header) and Godot 4.x (SceneMultiplayer)
payloads in one line. Python standard library only.
"""

import base64
import hashlib
import struct

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OPCODES = {0: "cont", 1: "text", 2: "binary", 8: "close", 9: "ping", 10: "pong"}


def accept_key(key: bytes) -> bytes:
    """Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 section 4.2.2)."""
    return base64.b64encode(hashlib.sha1(key.strip() + WS_GUID).digest())


class Frame:
    __slots__ = ("fin", "rsv", "opcode", "mask", "payload", "head")

    def __init__(self, fin, rsv, opcode, mask, payload, head):
        self.fin, self.rsv, self.opcode = fin, rsv, opcode
        self.mask, self.payload, self.head = mask, payload, head


class StreamReader:
    """Feeds bytes of one direction; yields the HTTP head once, then frames."""

    def __init__(self, expect_http=True):
        self.buf = bytearray()
        self.in_http = expect_http

    def feed(self, data: bytes):
        self.buf += data
        out = []
        if self.in_http:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return out
            out.append(("http", bytes(self.buf[: end + 4])))
            del self.buf[: end + 4]
            self.in_http = False
        while True:
            frame = self._frame()
            if frame is None:
                return out
            out.append(("frame", frame))

    def _frame(self):
        b = self.buf
        if len(b) < 2:
            return None
        fin, rsv, opcode = b[0] >> 7, (b[0] >> 4) & 7, b[0] & 15
        masked, length = b[1] >> 7, b[1] & 127
        pos = 2
        if length == 126:
            if len(b) < 4:
                return None
            length = struct.unpack(">H", b[2:4])[0]
            pos = 4
        elif length == 127:
            if len(b) < 10:
                return None
            length = struct.unpack(">Q", b[2:10])[0]
            pos = 10
        mask = None
        if masked:
            if len(b) < pos + 4:
                return None
            mask = bytes(b[pos : pos + 4])
            pos += 4
        if len(b) < pos + length:
            return None
        payload = bytes(b[pos : pos + length])
        if mask:
            payload = bytes(c ^ mask[i & 3] for i, c in enumerate(payload))
        head = bytes(b[:pos])
        del b[: pos + length]
        return Frame(fin, rsv, opcode, mask, payload, head)


def encode_frame(payload: bytes, opcode=2, mask=None) -> bytes:
    """One final frame; masked when a 4-byte key is given."""
    n = len(payload)
    head = bytes([0x80 | opcode])
    m = 0x80 if mask else 0
    if n < 126:
        head += bytes([m | n])
    elif n < 65536:
        head += bytes([m | 126]) + struct.pack(">H", n)
    else:
        head += bytes([m | 127]) + struct.pack(">Q", n)
    if mask:
        head += mask
        payload = bytes(c ^ mask[i & 3] for i, c in enumerate(payload))
    return head + payload


def _i32(b, off):
    return struct.unpack_from("<i", b, off)[0]


def _short(b: bytes, limit=24) -> str:
    text = b[:limit].hex()
    return text + ("..(%d)" % len(b) if len(b) > limit else "")


G3_TYPES = {0: "data", 1: "SYS_ADD", 2: "SYS_DEL", 3: "SYS_ID"}
G3_CMDS = {0: "REMOTE_CALL", 1: "REMOTE_SET", 2: "SIMPLIFY_PATH", 3: "CONFIRM_PATH", 4: "RAW"}
G4_CMDS = {0: "REMOTE_CALL", 1: "SIMPLIFY_PATH", 2: "CONFIRM_PATH", 3: "RAW",
           4: "SPAWN", 5: "DESPAWN", 6: "SYNC", 7: "SYS"}
G4_SYS = {0: "AUTH", 1: "ADD_PEER", 2: "DEL_PEER", 3: "RELAY"}


def describe_g3(p: bytes) -> str:
    if len(p) < 9:
        return "g3 short(%d)" % len(p)
    kind, frm, to = p[0], _i32(p, 1), _i32(p, 5)
    name = G3_TYPES.get(kind, "type%d" % kind)
    if kind in (1, 2, 3):
        peer = _i32(p, 9) if len(p) >= 13 else None
        return "g3 %s from=%d to=%d id=%s" % (name, frm, to, peer)
    body = p[9:]
    cmd = G3_CMDS.get(body[0], "cmd%d" % body[0]) if body else "empty"
    return "g3 data from=%d to=%d %s len=%d" % (frm, to, cmd, len(body))


def describe_g4(p: bytes, first_s2c=False) -> str:
    if first_s2c:
        if len(p) == 4:
            return "g4 ID id=%d" % _i32(p, 0)
        return "g4 bad-first-message len=%d" % len(p)
    if not p:
        return "g4 empty"
    cmd = p[0] & 7
    name = G4_CMDS[cmd]
    if cmd == 7 and len(p) >= 6:
        sub = G4_SYS.get(p[1], "sys%d" % p[1])
        ident = _i32(p, 2)
        if p[1] == 3:
            return "g4 SYS RELAY id=%d inner=[%s]" % (ident, describe_g4(p[6:]))
        return "g4 SYS %s id=%d" % (sub, ident)
    flags = p[0] >> 3
    extra = " flags=0x%x" % flags if flags else ""
    return "g4 %s%s len=%d" % (name, extra, len(p) - 1)


def describe_close(p: bytes) -> str:
    if len(p) < 2:
        return "close (no code)"
    code = struct.unpack(">H", p[:2])[0]
    return "close code=%d reason=%r" % (code, p[2:])
