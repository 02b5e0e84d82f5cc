#include "hdf5/local_heap.h"

namespace weightio::hdf5 {

LocalHeap::LocalHeap(const Context& ctx, uint64_t address) {
  io::Cursor c = ctx.at(address, "local heap");
  c.expect_signature("HEAP", "local heap");
  unsigned version = c.u8();
  if (version != 0) c.fail("unsupported local heap version " + std::to_string(version));
  c.skip(3);
  uint64_t size = ctx.read_length(c);
  ctx.read_length(c);  // free list head
  uint64_t data_address = ctx.read_offset(c);
  data_ = ctx.span(data_address, size, "local heap data segment");
  data_offset_ = ctx.absolute(data_address, "local heap data segment");
}

std::string_view LocalHeap::view_at(uint64_t offset) const {
  if (offset >= data_.size()) throw FormatError("local heap offset out of range", data_offset_);
  io::Cursor c(data_, data_offset_, static_cast<size_t>(offset));
  return c.cstring_view(data_.size());
}

}  // namespace weightio::hdf5
