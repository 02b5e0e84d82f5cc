"""A tiny, independent reader of HDF5 *metadata* used only to check the fixtures.

The fixture factory claims things such as "this group uses dense link storage"
or "this dataset uses an extensible-array chunk index".  h5py cannot tell us
these (libhdf5 hides the on-disk layout), so this module decodes just enough
of the format (superblock, object headers, a handful of messages) to verify
the claims.  It must never be used to compute expected *values*: h5py is the
oracle for those.  It also locates checksummed structures for the corruption
tests.

Format reference: "HDF5 File Format Specification Version 3.0".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import h5py

SIGNATURE = b"\x89HDF\r\n\x1a\n"

# Object header message types we care about.
MSG_LINK_INFO = 0x02
MSG_LAYOUT = 0x08
MSG_ATTRIBUTE = 0x0C
MSG_CONTINUATION = 0x10
MSG_SYMBOL_TABLE = 0x11
MSG_MODIFICATION_TIME_OLD = 0x0E
MSG_MODIFICATION_TIME = 0x12
MSG_ATTRIBUTE_INFO = 0x15

CHUNK_INDEX_NAMES = {
    1: "single",
    2: "implicit",
    3: "fixed_array",
    4: "extensible_array",
    5: "btree_v2",
}


@dataclass
class Superblock:
    offset: int  # absolute position of the signature (after any user block)
    version: int
    sizeof_addr: int
    sizeof_size: int
    base_address: int


@dataclass
class ObjectHeader:
    address: int  # absolute file offset
    version: int
    # (type, absolute offset of message data, size) of every message, in order.
    messages: list[tuple[int, int, int]] = field(default_factory=list)
    # (absolute offset, length) of each checksummed chunk (v2 headers only).
    checksummed_chunks: list[tuple[int, int]] = field(default_factory=list)
    # v2 headers keep times in their prefix (flag bit 5), v1 headers in a message.
    has_time_fields: bool = False

    @property
    def has_timestamps(self) -> bool:
        return self.has_time_fields or any(
            t in (MSG_MODIFICATION_TIME, MSG_MODIFICATION_TIME_OLD) for t, _, _ in self.messages
        )


def find_superblock(data: bytes) -> Superblock:
    # The superblock sits at 0 or at a power of two >= 512 (after a user block).
    offset = 0
    while offset + 8 <= len(data):
        if data[offset : offset + 8] == SIGNATURE:
            break
        offset = 512 if offset == 0 else offset * 2
    else:
        raise ValueError("no HDF5 signature found")
    version = data[offset + 8]
    if version in (0, 1):
        sizeof_addr, sizeof_size = data[offset + 13], data[offset + 14]
        base_pos = offset + 24 + (4 if version == 1 else 0)
    else:
        sizeof_addr, sizeof_size = data[offset + 9], data[offset + 10]
        base_pos = offset + 12
    base = int.from_bytes(data[base_pos : base_pos + sizeof_addr], "little")
    return Superblock(offset, version, sizeof_addr, sizeof_size, base)


def superblock_version(path: str | Path) -> int:
    return find_superblock(Path(path).read_bytes()).version


class _Reader:
    def __init__(self, data: bytes):
        self.data = data
        self.sb = find_superblock(data)
        # Addresses are relative to the base address, which is the superblock
        # position when there is a user block.
        self.base = self.sb.base_address or self.sb.offset

    def uint(self, pos: int, size: int) -> int:
        return int.from_bytes(self.data[pos : pos + size], "little")

    def addr(self, pos: int) -> int:
        return self.uint(pos, self.sb.sizeof_addr)

    def is_undefined(self, pos: int) -> bool:
        return self.data[pos : pos + self.sb.sizeof_addr] == b"\xff" * self.sb.sizeof_addr

    def object_header(self, rel_addr: int) -> ObjectHeader:
        pos = self.base + rel_addr
        if self.data[pos : pos + 4] == b"OHDR":
            return self._object_header_v2(pos)
        return self._object_header_v1(pos)

    def _object_header_v1(self, pos: int) -> ObjectHeader:
        hdr = ObjectHeader(pos, 1)
        nmsgs = self.uint(pos + 2, 2)
        blocks = [(pos + 16, self.uint(pos + 8, 4))]
        while blocks and len(hdr.messages) < nmsgs:
            start, length = blocks.pop(0)
            p = start
            while p + 8 <= start + length and len(hdr.messages) < nmsgs:
                mtype, size = self.uint(p, 2), self.uint(p + 2, 2)
                hdr.messages.append((mtype, p + 8, size))
                if mtype == MSG_CONTINUATION:
                    blocks.append((self.base + self.addr(p + 8), self.uint(p + 8 + self.sb.sizeof_addr, self.sb.sizeof_size)))
                p += 8 + size
        return hdr

    def _object_header_v2(self, pos: int) -> ObjectHeader:
        hdr = ObjectHeader(pos, 2)
        flags = self.data[pos + 5]
        p = pos + 6
        if flags & 0x20:  # access/modification/change/birth times
            hdr.has_time_fields = True
            p += 16
        if flags & 0x10:  # non-default attribute phase change values
            p += 4
        size_len = 1 << (flags & 0x03)
        chunk0_size = self.uint(p, size_len)
        p += size_len
        has_crt_order = bool(flags & 0x04)
        blocks = [(p, chunk0_size)]
        hdr.checksummed_chunks.append((pos, p + chunk0_size + 4 - pos))
        while blocks:
            start, length = blocks.pop(0)
            q = start
            header_len = 4 + (2 if has_crt_order else 0)
            while q + header_len <= start + length:
                mtype, size = self.data[q], self.uint(q + 1, 2)
                hdr.messages.append((mtype, q + header_len, size))
                if mtype == MSG_CONTINUATION:
                    cont = self.base + self.addr(q + header_len)
                    clen = self.uint(q + header_len + self.sb.sizeof_addr, self.sb.sizeof_size)
                    assert self.data[cont : cont + 4] == b"OCHK"
                    hdr.checksummed_chunks.append((cont, clen))
                    blocks.append((cont + 4, clen - 8))  # minus signature and checksum
                q += header_len + size
        return hdr

    def message(self, hdr: ObjectHeader, mtype: int) -> tuple[int, int] | None:
        for t, pos, size in hdr.messages:
            if t == mtype:
                return pos, size
        return None


@dataclass
class ObjectLayout:
    kind: str
    link_storage: str | None = None  # "symbol_table" | "compact" | "dense"
    attr_storage: str = "compact"  # "compact" | "dense"
    num_compact_attrs: int = 0
    has_timestamps: bool = False
    layout: str | None = None  # "compact" | "contiguous" | "chunked"
    chunk_index: str | None = None  # "btree_v1" or a CHUNK_INDEX_NAMES value
    header_version: int = 0


def inspect_object(path: str | Path, name: str) -> ObjectLayout:
    """Decode the storage details of object ``name`` in the file at ``path``."""
    with h5py.File(path, "r") as f:
        obj = f[name]
        rel_addr = h5py.h5o.get_info(obj.id).addr
        kind = "group" if isinstance(obj, h5py.Group) else "dataset" if isinstance(obj, h5py.Dataset) else "datatype"
    r = _Reader(Path(path).read_bytes())
    hdr = r.object_header(rel_addr)
    out = ObjectLayout(kind=kind, header_version=hdr.version, has_timestamps=hdr.has_timestamps)
    out.num_compact_attrs = sum(1 for t, _, _ in hdr.messages if t == MSG_ATTRIBUTE)

    ainfo = r.message(hdr, MSG_ATTRIBUTE_INFO)
    if ainfo is not None:
        pos, _ = ainfo
        flags = r.data[pos + 1]
        heap_pos = pos + 2 + (2 if flags & 1 else 0)
        if not r.is_undefined(heap_pos):
            out.attr_storage = "dense"

    if kind == "group":
        if r.message(hdr, MSG_SYMBOL_TABLE) is not None:
            out.link_storage = "symbol_table"
        else:
            pos, _ = r.message(hdr, MSG_LINK_INFO)
            flags = r.data[pos + 1]
            heap_pos = pos + 2 + (8 if flags & 1 else 0)
            out.link_storage = "compact" if r.is_undefined(heap_pos) else "dense"

    if kind == "dataset":
        pos, _ = r.message(hdr, MSG_LAYOUT)
        version = r.data[pos]
        if version < 3:
            raise NotImplementedError("layout message v1/v2 is not written by modern libhdf5")
        cls = r.data[pos + 1]
        out.layout = {0: "compact", 1: "contiguous", 2: "chunked"}[cls]
        if cls == 2:
            if version == 3:
                out.chunk_index = "btree_v1"
            else:
                ndims, dim_bytes = r.data[pos + 3], r.data[pos + 4]
                out.chunk_index = CHUNK_INDEX_NAMES[r.data[pos + 5 + ndims * dim_bytes]]
    return out


def checksummed_regions(path: str | Path, name: str = "/") -> list[tuple[int, int]]:
    """(offset, length) of the checksummed chunks of ``name``'s object header.

    Only version-2 object headers (libver "latest") carry checksums; the last
    4 bytes of each region are the checksum itself.
    """
    with h5py.File(path, "r") as f:
        rel_addr = h5py.h5o.get_info(f[name].id).addr
    r = _Reader(Path(path).read_bytes())
    return r.object_header(rel_addr).checksummed_chunks


def superblock_region(path: str | Path) -> tuple[int, int]:
    """(offset, length) of a version 2/3 superblock, checksum included."""
    data = Path(path).read_bytes()
    sb = find_superblock(data)
    if sb.version < 2:
        raise ValueError("superblock versions 0 and 1 have no checksum")
    return sb.offset, 12 + 4 * sb.sizeof_addr + 4



def find_signature(data: bytes, signature: bytes) -> list[int]:
    """Offsets of every occurrence of a 4-byte structure signature (e.g. b"FAHD")."""
    out, pos = [], data.find(signature)
    while pos >= 0:
        out.append(pos)
        pos = data.find(signature, pos + 1)
    return out


def with_eof_address(data: bytes, eof: int) -> bytes:
    """Rewrite the end-of-file address of a version 0/1 superblock (which has no checksum).

    Used to make a truncated file self-consistent, so a reader cannot reject
    it just by comparing the superblock's EOF with the file size and must
    cope with addresses past the end instead.
    """
    sb = find_superblock(data)
    if sb.version > 1:
        raise ValueError("only superblock versions 0 and 1 are unchecksummed")
    # base address, free-space info address, then the end-of-file address
    pos = sb.offset + 24 + (4 if sb.version == 1 else 0) + 2 * sb.sizeof_addr
    relative_eof = eof - sb.offset
    return data[:pos] + relative_eof.to_bytes(sb.sizeof_addr, "little") + data[pos + sb.sizeof_addr :]
