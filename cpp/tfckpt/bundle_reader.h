// A TensorFlow tensor bundle (the V2 checkpoint format, tensorflow/core/util/tensor_bundle):
// `<prefix>.index`, a table whose key "" holds the BundleHeaderProto and every other key a
// BundleEntryProto, and `<prefix>.data-NNNNN-of-MMMMM` shards holding the tensor bytes.
//
// The index is parsed and checked whole at open; data shards are memory-mapped on first use.
// Names follow TF's CheckpointReader: the visible tensors are every key except the header
// and the keys of the slices that partitioned tensors list (those are reassembled on read).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "convert/element_type.h"
#include "io/mapped_file.h"
#include "io/span.h"
#include "tfckpt/bundle_protos.h"
#include "tfckpt/dtypes.h"
#include "tfckpt/object_graph.h"
#include "tfckpt/table.h"

namespace weightio::tfckpt {

// Opens data shard `shard_id` whose conventional file name is `filename`.
using ShardOpener = std::function<std::shared_ptr<const io::MappedFile>(int32_t shard_id, const std::string& filename)>;

// A string tensor's elements: spans into a data shard, kept alive by `keep`.
struct StringTensor {
  std::vector<io::ByteSpan> elements;
  std::shared_ptr<const io::MappedFile> keep;
};

class BundleReader {
 public:
  static constexpr const char* kObjectGraphKey = "_CHECKPOINTABLE_OBJECT_GRAPH";

  // `index` holds the `.index` bytes; `prefix` names the data files (prefix.data-...).
  // Without an opener the shards are memory-mapped from those file names.
  BundleReader(std::shared_ptr<const io::MappedFile> index, std::string prefix, ShardOpener opener = nullptr);

  static std::string data_filename(const std::string& prefix, int32_t shard_id, int32_t num_shards);

  const std::string& prefix() const { return prefix_; }
  const std::string& index_path() const { return index_->path(); }
  // The index file as opened (see io::MappedFile::identity).
  const std::optional<io::FileIdentity>& index_identity() const { return index_->identity(); }
  const BundleHeader& header() const { return header_; }
  bool big_endian() const { return header_.endianness == 1; }
  // True when the stored bytes are in the other byte order than this machine's.
  bool needs_byteswap() const;

  // The visible tensor names, sorted bytewise (as TF's table orders them).
  const std::vector<std::string>& names() const { return names_; }
  // The entry of a visible name, or nullptr.
  const BundleEntry* find(const std::string& name) const;
  // Like find, but throws NotFoundError naming the checkpoint.
  const BundleEntry& entry(const std::string& name) const;

  static uint64_t num_elements(const BundleEntry& e);  // validated at open, fits int64

  // The stored bytes of a non-partitioned tensor when they can be handed out as they are
  // (fixed-size type, this machine's byte order); false otherwise. Checks the CRC when
  // `verify`. `keep` receives the shard that owns the bytes.
  bool direct_span(const std::string& name, bool verify, io::ByteSpan* span,
                   std::shared_ptr<const io::MappedFile>* keep) const;

  // Reads a whole fixed-size tensor (partitioned ones reassembled) into `out`, which holds
  // num_elements * to.size bytes. `raw` copies the stored elements unchanged (byte-swapped if
  // needed); otherwise they are converted from the stored type to `to`. `verify` checks the
  // CRC-32C of every stored piece first (ChecksumError on mismatch).
  void read(const std::string& name, uint8_t* out, const convert::ElementType& to, bool raw, bool verify) const;

  // The elements of a string tensor. The length checksum is always checked (as TF does);
  // `verify` also checks the CRC-32C of the whole stored tensor.
  StringTensor read_strings(const std::string& name, bool verify) const;

  // Checks, without reading the data, that every stored piece of a fixed-size tensor has the
  // size its shape needs and lies inside its data file: after this, allocating the output
  // is bounded by the bytes actually on disk (a hostile shape cannot drive it).
  void check_readable(const std::string& name) const;

  // Checks the stored CRC-32C of a tensor (every slice of a partitioned one).
  void verify(const std::string& name) const;

  bool has_object_graph() const { return find(kObjectGraphKey) != nullptr; }
  ObjectGraph object_graph() const;

  // The mapping of shard `id`, opened on first use (thread-safe).
  std::shared_ptr<const io::MappedFile> shard(int32_t id) const;

 private:
  struct Slice {
    std::vector<int64_t> start, length;  // resolved against the full shape
    const BundleEntry* entry = nullptr;  // the slice's own stored entry
    std::string key;
  };

  void parse_index();
  void check_entry(const std::string& key, const BundleEntry& e, uint64_t at) const;
  void resolve_slices(const std::string& name, const BundleEntry& full, uint64_t at);
  // The stored bytes of a non-partitioned entry: in bounds, size matching its shape.
  io::ByteSpan stored_bytes(const std::string& key, const BundleEntry& e,
                            std::shared_ptr<const io::MappedFile>* keep) const;
  void check_crc(const std::string& key, const BundleEntry& e, io::ByteSpan bytes,
                 const io::MappedFile& shard) const;
  void copy_slice(const BundleEntry& full, const Slice& s, io::ByteSpan src, uint8_t* out,
                  const convert::ElementType& to, bool raw) const;
  void copy_elements(const uint8_t* src, uint8_t* dst, size_t n, const DTypeInfo& info,
                     const convert::ElementType& to, bool raw) const;
  [[noreturn]] void rethrow_in(const std::string& file, const std::string& key) const;

  std::shared_ptr<const io::MappedFile> index_;
  std::string prefix_;
  ShardOpener opener_;
  std::unique_ptr<Table> table_;
  BundleHeader header_;
  std::vector<std::string> names_;
  std::unordered_map<std::string, BundleEntry> entries_;  // every key but the header
  std::unordered_map<std::string, uint64_t> entry_offsets_;
  std::unordered_map<std::string, std::vector<Slice>> slices_;  // partitioned tensors
  mutable std::mutex shard_mutex_;
  mutable std::vector<std::shared_ptr<const io::MappedFile>> shards_;
};

}  // namespace weightio::tfckpt
