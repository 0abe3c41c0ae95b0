"""WiredTiger's key and value packing for the local store, each format read once (issue 14,
session 33).

The WiredTiger bundled with SecantusDB packs every cursor's key and value in Python
(`wiredtiger/packing.py`): each `set_key`, `set_value`, `get_key` and `get_value` parses its
format string again, character by character through two generators, and builds its bytes by
concatenation. With the flows offered 50 ticks/s that was 12-14 % of each store's time
holding the GIL (`pack` 9.4-10.8 %, `unpack` 1.6-3.5 %; py-spy --gil, sessions 32 and 33).

Here a format is read once, and kept when it is made only of the columns SecantusDB's tables
use without a size (`S` a string, `u` raw bytes, `q`, `Q` and `r` integers): a key such as
`SSu` is then packed and unpacked column by column with WiredTiger's own integer encoding
(`pack_int`, `unpack_int`). Anything else (another column, a size, a value of another type,
a count of values that is not the format's) goes to WiredTiger's own function as shipped,
so the bytes and the values are always the shipped ones: the test packs and unpacks the
same values both ways (tests/ops/test_local_store.py)."""

from __future__ import annotations

from collections.abc import Callable

PLAIN = frozenset("SuqQr")  # the columns packed here; any other goes as shipped


def _columns(fmt, kept: dict[str, tuple[str, ...] | None]) -> tuple[str, ...] | None:
    """The format's columns, when each is a plain one (`PLAIN`) without a size; else None.
    Read once per format (`kept`)."""
    if type(fmt) is not str:
        return None
    columns = kept.get(fmt, ())
    if columns == ():
        columns = kept[fmt] = tuple(fmt) if fmt and all(c in PLAIN for c in fmt) else None
    return columns


def int_packer(shipped: Callable) -> Callable:
    """WiredTiger's `pack_int` (`shipped`) for a non-negative integer up to 2**64 - 1, the
    record ids and counters SecantusDB keeps; any other goes as shipped."""
    one, two, marker = 2**6 - 1, 2**13 + 2**6 - 1, 0xE0  # POS_1BYTE_MAX, POS_2BYTE_MAX
    to_bytes = int.to_bytes

    def pack_int(x):
        if type(x) is not int or x < 0 or x > 0xFFFFFFFFFFFFFFFF:
            return shipped(x)
        if x <= one:
            return bytes((0x80 | x,))
        if x <= two:
            x -= one + 1
            return bytes((0xC0 | (x >> 8), x & 0xFF))
        x -= two + 1
        if not x:  # as shipped: two bytes, so this one value does not pack shorter
            return b"\xe1\x00"
        size = (x.bit_length() + 7) // 8
        return bytes((marker | size,)) + to_bytes(x, size, "big")

    return pack_int


def packer(shipped: Callable, pack_int: Callable) -> Callable:
    """`pack(fmt, *values)` as WiredTiger's `shipped`, without reading `fmt` again."""
    kept: dict[str, tuple[str, ...] | None] = {}

    def pack(fmt, *values):
        columns = _columns(fmt, kept)
        if columns is None or len(values) != len(columns):
            return shipped(fmt, *values)
        out = []
        last = len(columns) - 1
        i = 0
        for column, value in zip(columns, values, strict=True):
            kind = type(value)
            if column == "S":
                if kind is not str:
                    return shipped(fmt, *values)
                end = value.find("\0")
                out.append((value if end < 0 else value[:end]).encode())
                out.append(b"\0")
            elif column == "u":
                if kind is not bytes:
                    return shipped(fmt, *values)
                if i != last:  # a raw column before the last carries its length
                    out.append(pack_int(len(value)))
                out.append(value)
            else:
                if kind is not int:
                    return shipped(fmt, *values)
                out.append(pack_int(value))
            i += 1
        return b"".join(out)

    return pack


def unpacker(shipped: Callable, unpack_int: Callable) -> Callable:
    """`unpack(fmt, s)` as WiredTiger's `shipped`, without reading `fmt` again."""
    kept: dict[str, tuple[str, ...] | None] = {}

    def unpack(fmt, s):
        columns = _columns(fmt, kept)
        if columns is None or type(s) is not bytes:
            return shipped(fmt, s)
        whole, result = s, []
        last = len(columns) - 1
        for i, column in enumerate(columns):
            if column == "S":
                end = s.find(b"\0")
                if end < 0:  # no terminator (WiredTiger never packs one so): as shipped
                    return shipped(fmt, whole)
                result.append(s[:end].decode())
                s = s[end + 1 :]
            elif column == "u":
                if i == last:
                    result.append(s)
                    s = b""
                else:
                    size, s = unpack_int(s)
                    result.append(s[:size])
                    s = s[size:]
            else:
                value, s = unpack_int(s)
                result.append(value)
        return result

    return unpack
