"""Hand-rolled protobuf encoding of demo.EchoRequest / demo.EchoReply (see echo.proto).

Both messages are `string message = 1`, so one length-delimited field is all there is.
Keeping this by hand means the peers need grpcio only: no protoc, no generated code.
"""


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode(message: str) -> bytes:
    data = message.encode("utf-8")
    if not data:
        return b""  # proto3 omits default values
    return b"\x0a" + _varint(len(data)) + data


def decode(buf: bytes) -> str:
    """Return field 1; skip unknown fields like a real protobuf parser would."""
    pos, message = 0, ""

    def read_varint() -> int:
        nonlocal pos
        shift = result = 0
        while True:
            if pos >= len(buf):
                raise ValueError("truncated varint")
            b = buf[pos]
            pos += 1
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7

    while pos < len(buf):
        key = read_varint()
        field, wire = key >> 3, key & 7
        if wire == 0:
            read_varint()
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            n = read_varint()
            if pos + n > len(buf):
                raise ValueError("truncated field")
            chunk = buf[pos:pos + n]
            pos += n
            if field == 1:
                message = chunk.decode("utf-8")
        else:
            raise ValueError(f"unsupported wire type {wire}")
    return message
