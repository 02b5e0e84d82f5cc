// What every parser needs to know about the file it reads: the bytes, the sizes the
// superblock declares for offsets and lengths, and the base address. Also the hard caps
// that make a hostile file fail fast.
#pragma once
#include <atomic>
#include <cstring>
#include <cstdint>
#include <mutex>
#include <set>
#include <string>

#include "io/cursor.h"
#include "io/errors.h"
#include "io/mapped_file.h"
#include "io/span.h"

namespace weightio::hdf5 {

namespace limits {
constexpr size_t kMaxHeaderMessages = 1u << 16;      // messages in one object header
constexpr size_t kMaxContinuationBlocks = 1u << 12;  // continuation blocks of one header
constexpr int kMaxBTreeDepth = 64;                   // v1 and v2 B-trees
constexpr size_t kMaxRank = 32;                      // dataspace dimensions (HDF5's own limit)
constexpr int kMaxLinkHops = 64;                     // soft links followed in one lookup
constexpr int kMaxGroupDepth = 512;                  // nesting depth of a tree walk
constexpr uint64_t kMaxChunkBytes = uint64_t{1} << 32;  // one decoded chunk (HDF5 caps at 4 GiB)
constexpr uint64_t kMaxHeapBlockRows = 64;           // rows in a fractal heap indirect block
// Decoded metadata the caches may hold, as a multiple of the file size plus a constant
// (see Context::charge). Legitimate files stay far below: each decoded structure is stored
// once in the file.
constexpr uint64_t kMaxDecodedPerFileByte = 32;
constexpr uint64_t kMaxDecodedSlack = uint64_t{64} << 20;
}  // namespace limits

class Context {
 public:
  Context(io::ByteSpan bytes, std::string path) : bytes_(bytes), path_(std::move(path)) {}
  // A context over a whole file: large raw reads go through the file's copy_out. The file
  // must outlive the context.
  explicit Context(const io::MappedFile& file) : bytes_(file.bytes()), path_(file.path()), file_(&file) {}

  // Copies n bytes of a span of this file to dst (see MappedFile::copy_out).
  void copy_out(io::ByteSpan stored, uint8_t* dst) const {
    if (file_ != nullptr) file_->copy_out(stored.data(), stored.size(), dst);
    else if (!stored.empty()) std::memcpy(dst, stored.data(), stored.size());
  }

  io::ByteSpan bytes() const { return bytes_; }
  const std::string& path() const { return path_; }
  unsigned sizeof_offsets() const { return sizeof_offsets_; }
  unsigned sizeof_lengths() const { return sizeof_lengths_; }
  uint64_t base() const { return base_; }
  void set_sizes(unsigned offsets, unsigned lengths) {
    sizeof_offsets_ = offsets;
    sizeof_lengths_ = lengths;
  }
  void set_base(uint64_t base) { base_ = base; }

  // Absolute file offset of a (relative) HDF5 address; throws if it lies outside the file.
  uint64_t absolute(uint64_t addr, const char* what) const {
    if (addr == io::kUndefinedAddress) throw FormatError(std::string("undefined address for ") + what);
    if (addr > bytes_.size() || base_ > bytes_.size() - addr)
      throw FormatError(std::string(what) + " address " + std::to_string(addr) + " lies outside the file (size " +
                        std::to_string(bytes_.size()) + ")");
    return base_ + addr;
  }
  // A cursor over the whole file positioned at `addr`.
  io::Cursor at(uint64_t addr, const char* what) const {
    return io::Cursor(bytes_, 0, static_cast<size_t>(absolute(addr, what)));
  }
  // A cursor over exactly [addr, addr + length).
  io::Cursor block(uint64_t addr, uint64_t length, const char* what) const {
    return io::Cursor(span(addr, length, what), absolute(addr, what));
  }
  io::ByteSpan span(uint64_t addr, uint64_t length, const char* what) const {
    uint64_t abs = absolute(addr, what);
    if (!bytes_.contains(abs, length))
      throw FormatError(std::string(what) + " of " + std::to_string(length) + " bytes runs past the end of the file", abs);
    return io::ByteSpan(bytes_.data() + abs, static_cast<size_t>(length));
  }

  uint64_t read_offset(io::Cursor& c) const { return c.address(sizeof_offsets_); }
  uint64_t read_length(io::Cursor& c) const { return c.uint_le(sizeof_lengths_); }

  // Hardening: accounts `bytes` of decoded metadata that a cache keeps for the life of the
  // file (object headers, link lists, chunk lists, global heap indexes); throws FormatError
  // once the total exceeds kMaxDecodedPerFileByte * file size + kMaxDecodedSlack. Structures
  // that a hostile file makes overlap (many headers sharing one continuation block, many
  // groups sharing one symbol table, many links naming one heap string) would otherwise
  // decode the same bytes without bound: memory quadratic in the file size.
  void charge(uint64_t n, const char* what) const {
    const uint64_t budget = limits::kMaxDecodedPerFileByte * bytes_.size() + limits::kMaxDecodedSlack;
    uint64_t total = charged_.fetch_add(n, std::memory_order_relaxed) + n;
    if (total > budget || total < n)
      throw FormatError(std::string(what) + " decode to more metadata than a file of " + std::to_string(bytes_.size()) +
                        " bytes can hold (overlapping structures?)");
  }

  // Hardening: fractal heap blocks whose checksum was verified, per file rather than per
  // FractalHeap object. A heap is opened anew for every links()/attributes() call, and a
  // hostile file can share one heap among many groups: each re-verified (and copied) whole
  // direct blocks, up to the file size, to read one small object.
  bool block_verified(uint64_t address) const {
    std::lock_guard<std::mutex> lock(verified_mutex_);
    return verified_blocks_.count(address) != 0;
  }
  void mark_block_verified(uint64_t address) const {
    std::lock_guard<std::mutex> lock(verified_mutex_);
    verified_blocks_.insert(address);
  }

 private:
  mutable std::atomic<uint64_t> charged_{0};
  mutable std::mutex verified_mutex_;
  mutable std::set<uint64_t> verified_blocks_;
  io::ByteSpan bytes_;
  std::string path_;
  const io::MappedFile* file_ = nullptr;
  unsigned sizeof_offsets_ = 8;
  unsigned sizeof_lengths_ = 8;
  uint64_t base_ = 0;
};

// Hardening: the same bound for what one call decodes and returns without caching (e.g.
// all attributes of one object): at most twice the file size plus kMaxDecodedSlack.
class LocalBudget {
 public:
  explicit LocalBudget(const Context& ctx) : left_(2 * ctx.bytes().size() + limits::kMaxDecodedSlack) {}
  void take(uint64_t n, const char* what) {
    if (n > left_) throw FormatError(std::string(what) + " decode to more bytes than the file holds (overlapping structures?)");
    left_ -= n;
  }

 private:
  uint64_t left_;
};

// Verifies a lookup3 checksum stored right after `covered`; throws ChecksumError.
void verify_checksum(io::ByteSpan covered, uint32_t stored, const char* what, uint64_t offset);
// The same for a structure starting at `start` inside cursor `c`, with `c` at the checksum.
void verify_checksum_at(io::Cursor& c, size_t start, const char* what);

}  // namespace weightio::hdf5
