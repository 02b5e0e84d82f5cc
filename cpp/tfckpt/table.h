// The immutable sorted key/value table TensorFlow writes as a bundle's `.index` file: the
// LevelDB table format as tsl/lib/io (format.h, block.cc, table.cc) implements it.
//
//   [data block]... [metaindex block] [index block] [footer: 48 bytes]
//   block:   entries, then uint32 restart offsets, then uint32 restart count
//   entry:   varint32 shared, varint32 non_shared, varint32 value_len, key[shared..], value
//   trailer: after every block, 1 byte compression type (0 none, 1 snappy) and the masked
//            CRC-32C of the block contents plus that type byte
//   footer:  metaindex and index BlockHandles (varint64 offset, varint64 size) padded to
//            40 bytes, then the magic 0xdb4775248b80fb57 (fixed64)
//
// The whole table is read at open: the index block gives the data blocks, every entry is
// decoded once, and lookups are binary searches. Every block checksum is verified, as TF does.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/span.h"

namespace weightio::tfckpt {

struct TableEntry {
  std::string key;
  io::ByteSpan value;
  uint64_t value_offset = 0;  // in the file; for a compressed block, the block's own offset
};

// Hard caps a hostile index file meets before it can make the reader allocate or loop much.
// (A bundle's index has one entry per tensor; the largest models have ~1e5.)
struct TableLimits {
  uint64_t max_entries = uint64_t{1} << 21;
  uint64_t max_key_bytes = uint64_t{1} << 16;             // one key
  uint64_t max_total_key_bytes = uint64_t{128} << 20;     // all keys together
  uint64_t max_decompressed_bytes = uint64_t{256} << 20;  // all Snappy blocks together
};

class Table {
 public:
  static constexpr uint64_t kMagic = 0xdb4775248b80fb57ull;
  static constexpr size_t kFooterSize = 48;
  static constexpr size_t kTrailerSize = 5;

  explicit Table(io::ByteSpan file, const TableLimits& limits = TableLimits());

  // Every entry in key order (keys are checked to be strictly increasing).
  const std::vector<TableEntry>& entries() const { return entries_; }
  const TableEntry* find(const std::string& key) const;
  // True when some block was Snappy-compressed.
  bool compressed() const { return compressed_; }

 private:
  struct BlockHandle {
    uint64_t offset = 0, size = 0;
  };
  io::ByteSpan read_block(const BlockHandle& h, uint64_t* base, bool* compressed);
  void parse_block(io::ByteSpan block, uint64_t base, bool compressed, std::vector<TableEntry>& out);

  io::ByteSpan file_;
  TableLimits limits_;
  std::vector<TableEntry> entries_;
  std::vector<std::unique_ptr<std::vector<uint8_t>>> decompressed_;
  uint64_t total_key_bytes_ = 0;
  uint64_t decompressed_bytes_ = 0;
  bool compressed_ = false;
};

}  // namespace weightio::tfckpt
