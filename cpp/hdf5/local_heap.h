// Local heap (HDF5 spec 3.0, III.D): holds the link names of symbol-table groups.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "hdf5/context.h"

namespace weightio::hdf5 {

class LocalHeap {
 public:
  LocalHeap(const Context& ctx, uint64_t address);
  // The NUL-terminated string at `offset` in the data segment (a view into the file).
  std::string_view view_at(uint64_t offset) const;
  std::string string_at(uint64_t offset) const { return std::string(view_at(offset)); }

 private:
  io::ByteSpan data_;
  uint64_t data_offset_ = 0;
};

}  // namespace weightio::hdf5
