#include "tfckpt/table.h"

#include <algorithm>

#include "io/cursor.h"
#include "io/errors.h"
#include "tfckpt/crc32c.h"
#include "tfckpt/snappy.h"
#include "tfckpt/wire.h"

namespace weightio::tfckpt {

namespace {
enum : uint8_t { kNoCompression = 0, kSnappyCompression = 1 };
}

Table::Table(io::ByteSpan file, const TableLimits& limits) : file_(file), limits_(limits) {
  if (file.size() < kFooterSize)
    throw FormatError("not a tensor bundle index: " + std::to_string(file.size()) +
                          " bytes is shorter than a table footer (48)",
                      0);
  const uint64_t footer_at = file.size() - kFooterSize;
  io::Cursor footer(io::ByteSpan(file.data() + footer_at, kFooterSize), footer_at);
  footer.seek(kFooterSize - 8);
  if (footer.u64() != kMagic)
    throw FormatError("not a tensor bundle index (bad table magic number)", footer_at + kFooterSize - 8);
  footer.seek(0);
  BlockHandle metaindex, index;
  metaindex.offset = read_varint64(footer);
  metaindex.size = read_varint64(footer);
  index.offset = read_varint64(footer);
  index.size = read_varint64(footer);
  if (footer.pos() > kFooterSize - 8) throw FormatError("table footer block handles overrun the padding", footer_at);

  uint64_t index_base = 0;
  bool index_compressed = false;
  io::ByteSpan index_block = read_block(index, &index_base, &index_compressed);
  std::vector<TableEntry> handles;
  parse_block(index_block, index_base, index_compressed, handles);
  // Data blocks follow each other (TableBuilder appends them): requiring that keeps a hostile
  // index from making the reader checksum and parse the same bytes over and over.
  uint64_t next_free = 0;
  for (const TableEntry& h : handles) {
    io::Cursor c(h.value, h.value_offset);
    BlockHandle data;
    data.offset = read_varint64(c);
    data.size = read_varint64(c);
    if (data.offset < next_free)
      throw FormatError("table data block at " + std::to_string(data.offset) + " overlaps the previous one",
                        h.value_offset);
    next_free = data.offset + data.size + kTrailerSize;  // read_block checks this stays in the file
    uint64_t base = 0;
    bool block_compressed = false;
    io::ByteSpan block = read_block(data, &base, &block_compressed);
    parse_block(block, base, block_compressed, entries_);
  }
  for (size_t i = 1; i < entries_.size(); ++i)
    if (!(entries_[i - 1].key < entries_[i].key))
      throw FormatError("table keys are not in strictly increasing order", entries_[i].value_offset);
}

const TableEntry* Table::find(const std::string& key) const {
  auto it = std::lower_bound(entries_.begin(), entries_.end(), key,
                             [](const TableEntry& e, const std::string& k) { return e.key < k; });
  return it != entries_.end() && it->key == key ? &*it : nullptr;
}

// The contents of one block (checksum verified, decompressed if needed). `*base` is the file
// offset of the returned bytes, or of the block when they were decompressed.
io::ByteSpan Table::read_block(const BlockHandle& h, uint64_t* base, bool* compressed) {
  const uint64_t limit = file_.size() - kFooterSize;
  if (h.offset > limit || h.size > limit - h.offset || kTrailerSize > limit - h.offset - h.size)
    throw FormatError("table block [" + std::to_string(h.offset) + ", +" + std::to_string(h.size) +
                          ") lies outside the file",
                      h.offset);
  const uint8_t* p = file_.data() + h.offset;
  const size_t n = static_cast<size_t>(h.size);
  io::Cursor trailer(io::ByteSpan(p + n, kTrailerSize), h.offset + n);
  const uint8_t type = trailer.u8();
  const uint32_t stored = crc32c_unmask(trailer.u32());
  const uint32_t actual = crc32c(p, n + 1);
  if (stored != actual && kCheckStructureChecksums)
    throw ChecksumError("table block checksum mismatch", h.offset + n + 1);
  *base = h.offset;
  *compressed = type == kSnappyCompression;
  if (type == kNoCompression) return io::ByteSpan(p, n);
  if (type != kSnappyCompression)
    throw FormatError("bad table block compression type " + std::to_string(type), h.offset + n);
  // Snappy expands at most ~21x (a 3-byte tag copies 64 bytes): anything more is hostile.
  const uint64_t budget = limits_.max_decompressed_bytes - decompressed_bytes_;
  const uint64_t cap = std::min<uint64_t>(budget, h.size * 22 + 64);
  decompressed_.push_back(std::make_unique<std::vector<uint8_t>>(snappy_uncompress(io::ByteSpan(p, n), h.offset, cap)));
  compressed_ = true;
  const std::vector<uint8_t>& out = *decompressed_.back();
  decompressed_bytes_ += out.size();
  return io::ByteSpan(out.data(), out.size());
}

// Decodes the entries of one block (tsl/lib/io/block.cc). Restart points are checked to
// land on entries that share nothing with their predecessor, which is what makes TF's own
// binary search over them sound.
void Table::parse_block(io::ByteSpan block, uint64_t base, bool compressed, std::vector<TableEntry>& out) {
  // Offsets inside a decompressed block do not exist in the file: report the block's offset.
  auto where = [&](size_t pos) { return compressed ? base : base + pos; };
  if (block.size() < 4) throw FormatError("table block shorter than its restart count", base);
  io::Cursor tail(block, base, block.size() - 4);
  const uint32_t num_restarts = tail.u32();
  if (num_restarts > (block.size() - 4) / 4)
    throw FormatError("table block restart count " + std::to_string(num_restarts) + " does not fit the block",
                      where(block.size() - 4));
  const size_t restarts_at = block.size() - 4 - size_t{num_restarts} * 4;
  io::Cursor restarts(io::ByteSpan(block.data() + restarts_at, size_t{num_restarts} * 4), where(restarts_at));
  uint32_t next_restart_index = 0;
  uint32_t next_restart = num_restarts > 0 ? restarts.u32() : UINT32_MAX;

  // TF treats a block without restart points as empty; entries there would be invisible.
  if (num_restarts == 0 && restarts_at > 0)
    throw FormatError("table block has entries but no restart points", where(block.size() - 4));
  io::Cursor c(io::ByteSpan(block.data(), restarts_at), base);
  std::string key;
  bool first = true;
  while (c.remaining() > 0) {
    const size_t entry_pos = c.pos();
    const uint32_t shared = read_varint32(c);
    const uint32_t non_shared = read_varint32(c);
    const uint32_t value_len = read_varint32(c);
    if (shared > key.size() || (first && shared != 0))
      throw FormatError("table entry shares more key bytes than the previous key has", where(entry_pos));
    if (uint64_t{shared} + non_shared > limits_.max_key_bytes)
      throw FormatError("table key longer than " + std::to_string(limits_.max_key_bytes) + " bytes", where(entry_pos));
    if (next_restart < entry_pos)
      throw FormatError("table block restart point " + std::to_string(next_restart) + " is not an entry start",
                        where(restarts_at + size_t{next_restart_index} * 4));
    if (next_restart == entry_pos) {
      if (shared != 0)
        throw FormatError("table entry at a restart point shares key bytes", where(entry_pos));
      ++next_restart_index;
      uint32_t following = next_restart_index < num_restarts ? restarts.u32() : UINT32_MAX;
      if (following != UINT32_MAX && following <= next_restart)
        throw FormatError("table block restart points are not increasing",
                          where(restarts_at + size_t{next_restart_index} * 4));
      next_restart = following;
    }
    const uint8_t* delta = c.take(non_shared);
    uint64_t value_at = c.file_offset();
    io::ByteSpan value = c.take_span(value_len);
    key.resize(shared);
    key.append(reinterpret_cast<const char*>(delta), non_shared);
    total_key_bytes_ += key.size();
    if (total_key_bytes_ > limits_.max_total_key_bytes)
      throw FormatError("table keys exceed " + std::to_string(limits_.max_total_key_bytes) + " bytes in all",
                        where(entry_pos));
    if (out.size() >= limits_.max_entries)
      throw FormatError("table has more than " + std::to_string(limits_.max_entries) + " entries", where(entry_pos));
    out.push_back(TableEntry{key, value, compressed ? base : value_at});
    first = false;
  }
  // A restart point past the last entry: only an empty block may have one (at offset 0).
  if (next_restart != UINT32_MAX && !(first && next_restart == 0 && next_restart_index + 1 == num_restarts))
    throw FormatError("table block restart point " + std::to_string(next_restart) + " is not an entry start",
                      where(restarts_at + size_t{next_restart_index} * 4));
}

}  // namespace weightio::tfckpt
