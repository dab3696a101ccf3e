"""Small files that claim huge images: a flat tiled TIFF and a PNG, built in a few MB."""

from __future__ import annotations

import io
import struct

from PIL import Image


def flat_tiled_tiff(width: int, height: int, tile: int = 256) -> bytes:
    """A valid, uncompressed, single-level tiled RGB TIFF whose tiles all share one block of
    bytes: ``width`` x ``height`` pixels in about 8 bytes per tile plus one tile."""
    across, down = -(-width // tile), -(-height // tile)
    count = across * down
    tile_bytes = tile * tile * 3
    entries = 11
    ifd_offset = 8
    ifd_size = 2 + entries * 12 + 4
    bits_offset = ifd_offset + ifd_size
    offsets_offset = bits_offset + 6
    counts_offset = offsets_offset + 4 * count
    data_offset = counts_offset + 4 * count

    def entry(tag: int, kind: int, n: int, value: int) -> bytes:
        if kind == 3 and n == 1:  # SHORT, left-justified in the 4-byte field
            return struct.pack("<HHIHH", tag, kind, n, value, 0)
        return struct.pack("<HHII", tag, kind, n, value)

    ifd = (
        struct.pack("<H", entries)
        + b"".join(
            [
                entry(256, 4, 1, width),
                entry(257, 4, 1, height),
                entry(258, 3, 3, bits_offset),
                entry(259, 3, 1, 1),  # no compression
                entry(262, 3, 1, 2),  # RGB
                entry(277, 3, 1, 3),
                entry(284, 3, 1, 1),  # chunky
                entry(322, 4, 1, tile),
                entry(323, 4, 1, tile),
                entry(324, 4, count, offsets_offset),
                entry(325, 4, count, counts_offset),
            ]
        )
        + struct.pack("<I", 0)
    )
    pixels = bytes([230, 200, 220]) * (tile * tile)  # pale pink, like stained tissue
    return (
        b"II*\x00"
        + struct.pack("<I", ifd_offset)
        + ifd
        + struct.pack("<HHH", 8, 8, 8)
        + struct.pack(f"<{count}I", *([data_offset] * count))
        + struct.pack(f"<{count}I", *([tile_bytes] * count))
        + pixels
    )


def bomb_png(side: int = 10_000) -> bytes:
    """A 1-bit ``side`` x ``side`` PNG: 100 Mpx (past Pillow's 89.5 Mpx warning) in ~15 kB."""
    buffer = io.BytesIO()
    Image.new("1", (side, side)).save(buffer, "PNG", optimize=True)
    return buffer.getvalue()
