"""Fixtures for the TensorFlow checkpoint tests, and the mutation worker.

Nothing here imports TensorFlow (the worker must start fast):

* an independent pure-Python **tensor bundle writer** (table blocks with any restart
  interval and block size, optional Snappy-compressed blocks, big-endian data, partitioned
  tensors under their OrderedCode slice keys, several shards, hand-made protos), used for the
  cases TensorFlow's own writer never produces; the tests have TensorFlow read every such
  bundle too, so the writer is checked against the real reader;
* helpers to find a table's blocks and re-compute their checksums after a mutation;
* ``python tests/tf_fixtures.py mutate PREFIX START STOP SEED WORK_DIR``: writes mutants
  ``START..STOP-1`` of the checkpoint at PREFIX (bit flips, byte overwrites, truncations,
  zeroed/duplicated ranges in the index or a data file; half of the index mutants get their
  block checksums repaired so the mutation reaches the parsers behind them), opens each with
  ``weightio.tf`` and reads everything, and prints one JSON line per mutant:
  ``{"begin": id}`` before touching it, then ``{"id", "outcome", "detail"}`` with outcome
  ``ok``, ``weightio`` (detail: the error class) or ``other`` (detail: the traceback).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import struct
import sys
import traceback
from pathlib import Path

import numpy as np

# ---------------------------------------------------------------------------------------
# CRC-32C and the masked form TensorFlow stores
# ---------------------------------------------------------------------------------------

_CRC_TABLE = []
for _b in range(256):
    _c = _b
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC_TABLE.append(_c)


def crc32c(data: bytes, crc: int = 0) -> int:
    c = crc ^ 0xFFFFFFFF
    table = _CRC_TABLE
    for byte in data:
        c = table[(c ^ byte) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def mask(crc: int) -> int:
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


# ---------------------------------------------------------------------------------------
# protobuf wire format
# ---------------------------------------------------------------------------------------


def varint(v: int) -> bytes:
    v &= (1 << 64) - 1  # negative int32/int64 are sign-extended to 10 bytes
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def pb_varint(field: int, v: int) -> bytes:
    return varint(field << 3) + varint(v)


def pb_bytes(field: int, payload: bytes) -> bytes:
    return varint((field << 3) | 2) + varint(len(payload)) + payload


def pb_fixed32(field: int, v: int) -> bytes:
    return varint((field << 3) | 5) + struct.pack("<I", v)


def encode_shape(dims) -> bytes:
    return b"".join(pb_bytes(2, pb_varint(1, d) if d else b"") for d in dims)


def encode_slice(starts, lengths) -> bytes:
    out = b""
    for s, n in zip(starts, lengths):
        ext = (pb_varint(1, s) if s else b"") + (pb_varint(2, n) if n is not None and n >= 0 else b"")
        out += pb_bytes(1, ext)
    return out


def encode_header(num_shards=1, endianness=0, producer=1, min_consumer=0, bad_consumers=()) -> bytes:
    version = (pb_varint(1, producer) if producer else b"") + (pb_varint(2, min_consumer) if min_consumer else b"")
    for b in bad_consumers:
        version += pb_varint(3, b)
    return (
        pb_varint(1, num_shards)
        + (pb_varint(2, endianness) if endianness else b"")
        + pb_bytes(3, version)
    )


def encode_entry(dtype, shape, shard_id=0, offset=0, size=0, crc=0, slices=()) -> bytes:
    out = pb_varint(1, dtype) + pb_bytes(2, encode_shape(shape))
    if shard_id:
        out += pb_varint(3, shard_id)
    if offset:
        out += pb_varint(4, offset)
    if size:
        out += pb_varint(5, size)
    out += pb_fixed32(6, crc)
    for starts, lengths in slices:
        out += pb_bytes(7, encode_slice(starts, lengths))
    return out


# ---------------------------------------------------------------------------------------
# OrderedCode slice keys (saved_tensor_slice_util.cc EncodeTensorNameSlice)
# ---------------------------------------------------------------------------------------


def oc_num_increasing(v: int) -> bytes:
    payload = v.to_bytes((v.bit_length() + 7) // 8, "big") if v else b""
    return bytes([len(payload)]) + payload


def oc_string(s: bytes) -> bytes:
    out = bytearray()
    for ch in s:
        if ch == 0:
            out += b"\x00\xff"
        elif ch == 0xFF:
            out += b"\xff\x00"
        else:
            out.append(ch)
    return bytes(out) + b"\x00\x01"


def oc_signed_num_increasing(v: int) -> bytes:
    x = ~v if v < 0 else v
    if x < 64:
        return bytes([(0x80 ^ v) & 0xFF])
    n = min((x.bit_length() + 7) // 7, 10)  # n bytes hold 7n - 1 value bits
    raw = (v & ((1 << (8 * n)) - 1)).to_bytes(n, "big")  # two's complement, sign-extended
    header = ((1 << n) - 1) << (7 * n)  # the sign bit and n - 1 size bits, all set
    return (int.from_bytes(raw, "big") ^ header).to_bytes(n, "big")


def slice_key(name: bytes, starts, lengths) -> bytes:
    key = oc_num_increasing(0) + oc_string(name) + oc_num_increasing(len(starts))
    for s, n in zip(starts, lengths):
        key += oc_signed_num_increasing(s) + oc_signed_num_increasing(-1 if n is None else n)
    return key


# ---------------------------------------------------------------------------------------
# Snappy (raw format), a small greedy compressor
# ---------------------------------------------------------------------------------------


def snappy_compress(data: bytes) -> bytes:
    out = bytearray(varint(len(data)))
    table: dict[bytes, int] = {}
    i = lit_start = 0
    n = len(data)

    def literal(a: int, b: int) -> None:
        while a < b:
            chunk = min(b - a, 1 << 16)
            length = chunk - 1
            if length < 60:
                out.append(length << 2)
            elif length < 256:
                out.extend(bytes([60 << 2, length]))
            else:
                out.extend(bytes([61 << 2]) + struct.pack("<H", length))
            out.extend(data[a : a + chunk])
            a += chunk

    while i + 4 <= n:
        key = data[i : i + 4]
        cand = table.get(key)
        table[key] = i
        if cand is None or i - cand >= 1 << 16:
            i += 1
            continue
        length = 4
        while i + length < n and data[cand + length] == data[i + length] and length < 64:
            length += 1
        literal(lit_start, i)
        offset = i - cand
        if length <= 11 and offset < 2048:
            out += bytes([1 | ((length - 4) << 2) | ((offset >> 8) << 5), offset & 0xFF])
        else:
            out += bytes([2 | ((length - 1) << 2)]) + struct.pack("<H", offset)
        i += length
        lit_start = i
    literal(lit_start, n)
    return bytes(out)


# ---------------------------------------------------------------------------------------
# The table (LevelDB format) and the bundle
# ---------------------------------------------------------------------------------------

MAGIC = 0xDB4775248B80FB57


def _block(entries, restart_interval: int) -> bytes:
    out = bytearray()
    restarts = []
    prev = b""
    for i, (key, value) in enumerate(entries):
        if i % restart_interval == 0:
            restarts.append(len(out))
            shared = 0
        else:
            shared = 0
            while shared < min(len(prev), len(key)) and prev[shared] == key[shared]:
                shared += 1
        out += varint(shared) + varint(len(key) - shared) + varint(len(value)) + key[shared:] + value
        prev = key
    if not restarts:
        restarts = [0]
    for r in restarts:
        out += struct.pack("<I", r)
    out += struct.pack("<I", len(restarts))
    return bytes(out)


def write_table(path, entries, *, restart_interval=16, block_size=4096, compress=False) -> None:
    """Writes sorted (key, value) pairs as a table file."""
    f = bytearray()

    def emit(contents: bytes) -> bytes:
        kind = 0
        if compress:
            contents, kind = snappy_compress(contents), 1
        handle = varint(len(f)) + varint(len(contents))
        f.extend(contents)
        f.append(kind)
        f.extend(struct.pack("<I", mask(crc32c(contents + bytes([kind])))))
        return handle

    index = []
    pending: list = []
    size = 0
    for key, value in entries:
        pending.append((key, value))
        size += len(key) + len(value) + 3
        if size >= block_size:
            index.append((pending[-1][0], emit(_block(pending, restart_interval))))
            pending, size = [], 0
    if pending:
        index.append((pending[-1][0], emit(_block(pending, restart_interval))))
    metaindex = emit(_block([], restart_interval))
    index_handle = emit(_block(index, 1))
    footer = (metaindex + index_handle).ljust(40, b"\x00") + struct.pack("<Q", MAGIC)
    f.extend(footer)
    Path(path).write_bytes(bytes(f))


TF_ENUM = {
    "float32": 1, "float64": 2, "int32": 3, "uint8": 4, "int16": 5, "int8": 6, "complex64": 8,
    "int64": 9, "bool": 10, "bfloat16": 14, "uint16": 17, "complex128": 18, "float16": 19,
    "uint32": 22, "uint64": 23,
}


def tensor_bytes(arr: np.ndarray, big_endian: bool) -> bytes:
    arr = np.ascontiguousarray(arr)
    if not big_endian or arr.dtype.itemsize == 1:
        return arr.tobytes()
    if arr.dtype.kind == "c":
        unit = np.dtype(f"<f{arr.dtype.itemsize // 2}")
    else:
        unit = np.dtype(f"<u{arr.dtype.itemsize}")
    return arr.view(unit).byteswap().tobytes()


def string_bytes(items: list[bytes], big_endian: bool) -> tuple[bytes, int]:
    lengths = b"".join(varint(len(s)) for s in items)
    crc = 0
    for s in items:
        word = struct.pack(">I" if big_endian else "<I", len(s))
        crc = crc32c(word, crc)
    checksum = struct.pack(">I" if big_endian else "<I", mask(crc))
    crc = crc32c(checksum, crc)
    body = b"".join(items)
    crc = crc32c(body, crc)
    return lengths + checksum + body, mask(crc)


def write_bundle(
    prefix,
    tensors: dict,
    *,
    big_endian=False,
    num_shards=1,
    partitions: dict | None = None,
    restart_interval=16,
    block_size=4096,
    compress=False,
    header: bytes | None = None,
    extra_entries: dict | None = None,
) -> str:
    """Writes a tensor bundle. ``tensors``: name -> numpy array or list of bytes (a string
    tensor; ``(list, shape)`` for a shaped one). ``partitions``: name -> list of
    ``(starts, lengths)`` slices to store that tensor as (a length None means the whole
    dimension). Tensors go to shards round-robin. Returns the prefix."""
    prefix = str(prefix)
    Path(prefix).parent.mkdir(parents=True, exist_ok=True)
    partitions = partitions or {}
    shards = [bytearray() for _ in range(num_shards)]
    entries: dict[bytes, bytes] = {}
    counter = 0

    def add(key: bytes, value) -> None:
        nonlocal counter
        shard = counter % num_shards
        counter += 1
        data = shards[shard]
        if isinstance(value, tuple) or isinstance(value, list):
            items, shape = value if isinstance(value, tuple) else (value, (len(value),))
            payload, crc = string_bytes(list(items), big_endian)
            dtype = 7
        else:
            arr = np.asarray(value)
            payload = tensor_bytes(arr, big_endian)
            crc = mask(crc32c(payload))
            dtype, shape = TF_ENUM[arr.dtype.name], arr.shape
        entries[key] = encode_entry(dtype, shape, shard, len(data), len(payload), crc)
        data.extend(payload)

    for name, value in tensors.items():
        key = name.encode() if isinstance(name, str) else name
        if name in partitions:
            arr = np.asarray(value)
            slices = []
            for starts, lengths in partitions[name]:
                region = tuple(
                    slice(s, s + (n if n is not None else arr.shape[d])) for d, (s, n) in enumerate(zip(starts, lengths))
                )
                add(slice_key(key, starts, lengths), arr[region])
                slices.append((starts, lengths))
            entries[key] = encode_entry(TF_ENUM[arr.dtype.name], arr.shape, slices=slices)
        else:
            add(key, value)
    for key, value in (extra_entries or {}).items():
        entries[key] = value
    hdr = header if header is not None else encode_header(num_shards, 1 if big_endian else 0)
    table = [(b"", hdr)] + sorted(entries.items())
    write_table(prefix + ".index", table, restart_interval=restart_interval, block_size=block_size, compress=compress)
    for i, data in enumerate(shards):
        Path(f"{prefix}.data-{i:05d}-of-{num_shards:05d}").write_bytes(bytes(data))
    return prefix


# ---------------------------------------------------------------------------------------
# Finding blocks in a table (for checksum repair after a mutation)
# ---------------------------------------------------------------------------------------


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    v = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return v, pos


def table_blocks(index: bytes) -> list[tuple[int, int]]:
    """(offset, size) of every block of a well-formed, uncompressed table."""
    footer = len(index) - 48
    meta_off, p = _read_varint(index, footer)
    meta_size, p = _read_varint(index, p)
    idx_off, p = _read_varint(index, p)
    idx_size, p = _read_varint(index, p)
    blocks = [(meta_off, meta_size), (idx_off, idx_size)]
    block = index[idx_off : idx_off + idx_size]
    nrestarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    end = len(block) - 4 - 4 * nrestarts
    pos = 0
    key = b""
    while pos < end:
        shared, pos = _read_varint(block, pos)
        non_shared, pos = _read_varint(block, pos)
        vlen, pos = _read_varint(block, pos)
        key = key[:shared] + block[pos : pos + non_shared]
        pos += non_shared
        off, q = _read_varint(block, pos)
        size, _ = _read_varint(block, q)
        blocks.append((off, size))
        pos += vlen
    return blocks


def repair_checksums(data: bytearray, blocks: list[tuple[int, int]]) -> None:
    for off, size in blocks:
        if off + size + 5 <= len(data):
            contents = bytes(data[off : off + size + 1])
            struct.pack_into("<I", data, off + size + 1, mask(crc32c(contents)))


# ---------------------------------------------------------------------------------------
# Mutants and the worker
# ---------------------------------------------------------------------------------------

MAX_READ_BYTES = 64 << 20
WORKER_ADDRESS_SPACE = 3 << 30


def checkpoint_files(prefix: str) -> list[Path]:
    p = Path(prefix)
    return sorted(q for q in p.parent.iterdir() if q.name.startswith(p.name + ".index") or q.name.startswith(p.name + ".data-"))


def mutate(data: bytearray, rng: random.Random) -> str:
    n = len(data)
    op = rng.choice(["flip", "flip", "byte", "truncate", "zero8", "ones8", "dup8", "varint"])
    if n == 0:
        return "empty"
    at = rng.randrange(n)
    if op == "flip":
        for _ in range(rng.randint(1, 3)):
            data[rng.randrange(n)] ^= 1 << rng.randrange(8)
    elif op == "byte":
        data[at] = rng.choice([0x00, 0xFF, 0x80, 0x7F, rng.randrange(256)])
    elif op == "truncate":
        del data[at:]
    elif op in ("zero8", "ones8"):
        for i in range(at, min(n, at + 8)):
            data[i] = 0 if op == "zero8" else 0xFF
    elif op == "dup8":
        src = rng.randrange(n)
        chunk = data[src : src + 8]
        data[at : at + len(chunk)] = chunk
        del data[n:]
    else:  # a large varint where one may be
        data[at : at + 10] = b"\xff" * 9 + b"\x01"
        del data[n:]
    return op


def make_mutant(prefix: str, mutant_id: int, seed: int, work_dir: Path) -> tuple[str, str]:
    """Copies the checkpoint at ``prefix`` into ``work_dir/m<id>/`` with one file mutated;
    returns (new prefix, description)."""
    rng = random.Random(seed * 1_000_003 + mutant_id)
    files = checkpoint_files(prefix)
    out_dir = work_dir / f"m{mutant_id}"
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    base = Path(prefix).name
    index = [f for f in files if f.name.endswith(".index")][0]
    target = index if rng.random() < 0.75 or len(files) == 1 else rng.choice([f for f in files if f != index])
    desc = ""
    for f in files:
        data = bytearray(f.read_bytes())
        if f == target:
            op = mutate(data, rng)
            repaired = f == index and op != "truncate" and rng.random() < 0.5
            if repaired:
                try:
                    repair_checksums(data, table_blocks(bytes(f.read_bytes())))
                except Exception:
                    repaired = False
            desc = f"{f.name}: {op}{' (checksums repaired)' if repaired else ''}"
        (out_dir / f.name).write_bytes(bytes(data))
    return str(out_dir / base), desc


def exercise(prefix: str) -> None:
    """Everything a user can do with a checkpoint."""
    import weightio.tf as wt

    reader = wt.load_checkpoint(prefix)
    shapes = reader.get_variable_to_shape_map()
    dtypes = reader.get_variable_to_dtype_map()
    readable = []
    for name in reader.keys():
        reader.entry(name)
        n = int(np.prod(shapes[name], dtype=np.float64)) if shapes[name] else 1
        if n * 16 > MAX_READ_BYTES:  # a declared size no test checkpoint has
            continue
        for verify in (False, True):
            try:
                reader.get_tensor(name, verify=verify)
            except wt.Error:
                pass
        try:
            reader.get_tensor(name, copy=True)
        except wt.Error:
            pass
        readable.append(name)
        assert dtypes[name].name
    try:
        reader.read_many(readable, threads=2)
    except wt.Error:
        pass
    try:  # what weightio.keras's first restores read ahead
        numeric = [n for n in readable if dtypes[n].read_dtype.kind in "fiub"]
        reader._read_ahead(numeric, [np.empty(shapes[n], dtypes[n].read_dtype) for n in numeric], 2).finish()
    except wt.Error:
        pass
    try:
        reader.verify()
    except wt.Error:
        pass
    graph = reader.object_graph()
    if graph is not None:
        list(graph.walk())
        graph.variables()


def run_worker(prefix: str, start: int, stop: int, seed: int, work_dir: Path) -> None:
    import resource

    import weightio

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = WORKER_ADDRESS_SPACE if hard == resource.RLIM_INFINITY else min(WORKER_ADDRESS_SPACE, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    for mutant_id in range(start, stop):
        print(json.dumps({"begin": mutant_id}), flush=True)
        path, desc = make_mutant(prefix, mutant_id, seed, work_dir)
        try:
            exercise(path)
            outcome, detail = "ok", ""
        except (weightio.Error, FileNotFoundError) as exc:
            outcome, detail = "weightio", type(exc).__name__
        except Exception:
            outcome, detail = "other", traceback.format_exc()
        shutil.rmtree(Path(path).parent, ignore_errors=True)
        print(json.dumps({"id": mutant_id, "outcome": outcome, "detail": detail, "mutation": desc}), flush=True)


if __name__ == "__main__":
    if len(sys.argv) == 7 and sys.argv[1] == "mutate":
        _, _, prefix_arg, start_arg, stop_arg, seed_arg, work = sys.argv
        run_worker(prefix_arg, int(start_arg), int(stop_arg), int(seed_arg), Path(work))
    elif len(sys.argv) == 3 and sys.argv[1] == "one":
        exercise(sys.argv[2])
        print("ok")
    else:
        print(__doc__, file=sys.stderr)
        raise SystemExit(2)
    os._exit(0)
