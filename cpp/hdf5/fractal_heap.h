// Fractal heap (HDF5 spec 3.0, III.G): header "FRHP", direct blocks "FHDB", indirect
// blocks "FHIB". Holds the link and attribute messages of groups and objects that use
// dense storage. Objects are located by heap ID: managed, tiny or huge.
#pragma once
#include <cstdint>
#include <functional>
#include <mutex>
#include <set>
#include <vector>

#include "hdf5/context.h"

namespace weightio::hdf5 {

class FractalHeap {
 public:
  FractalHeap(const Context& ctx, uint64_t address);
  // The bytes of the object named by heap ID `id` (a view into the file or into `id`).
  io::ByteSpan object(io::ByteSpan id) const;
  uint16_t id_length() const { return id_length_; }

 private:
  io::ByteSpan managed(uint64_t offset, uint64_t length) const;
  io::ByteSpan huge(io::Cursor& id) const;
  uint64_t row_block_size(unsigned row) const { return row == 0 ? start_block_size_ : start_block_size_ << (row - 1); }
  uint64_t row_offset(unsigned row) const { return row == 0 ? 0 : uint64_t{width_} * start_block_size_ << (row - 1); }

  // Verifies a block checksum once per block (direct blocks checksum their whole size).
  void verify_once(uint64_t block, const std::function<void()>& verify) const;

  const Context& ctx_;
  uint64_t address_;
  uint16_t id_length_ = 0;
  uint16_t filter_length_ = 0;
  uint8_t flags_ = 0;
  uint32_t max_managed_size_ = 0;
  uint64_t huge_btree_ = io::kUndefinedAddress;
  uint16_t width_ = 0;
  uint64_t start_block_size_ = 0;
  uint64_t max_direct_size_ = 0;
  uint16_t max_heap_bits_ = 0;
  uint64_t root_ = io::kUndefinedAddress;
  unsigned root_rows_ = 0;
  unsigned max_direct_rows_ = 0;
  unsigned heap_offset_size_ = 0;  // bytes of a block offset / a managed object offset
  unsigned heap_length_size_ = 0;  // bytes of a managed object length in a heap ID
};

}  // namespace weightio::hdf5
