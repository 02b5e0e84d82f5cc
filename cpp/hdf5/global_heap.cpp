#include "hdf5/global_heap.h"

namespace weightio::hdf5 {

const GlobalHeap::Collection& GlobalHeap::load(uint64_t address) {
  auto it = cache_.find(address);
  if (it != cache_.end()) return it->second;
  io::Cursor head = ctx_.at(address, "global heap");
  head.expect_signature("GCOL", "global heap collection");
  unsigned version = head.u8();
  if (version != 1) head.fail("unsupported global heap version " + std::to_string(version));
  head.skip(3);
  uint64_t size = ctx_.read_length(head);
  if (size < 16) head.fail("global heap collection too small");
  io::Cursor c = ctx_.block(address, size, "global heap collection");
  // The collection header and each object header are padded to a multiple of 8 bytes
  // (which matters when lengths are 4 bytes).
  const size_t header = (8 + ctx_.sizeof_lengths() + 7) & ~size_t{7};
  c.skip(header);
  Collection coll;
  // Objects: index(2) refcount(2) reserved(4) size(L) [pad] data (padded to 8). Index 0 is free space.
  while (c.remaining() >= header) {
    uint16_t index = c.u16();
    c.skip(6);
    uint64_t obj_size = ctx_.read_length(c);
    if (index == 0) break;
    c.skip(header - 8 - ctx_.sizeof_lengths());
    io::ByteSpan data = c.take_span(obj_size);
    coll.objects.emplace(index, data);
    ctx_.charge(64, "global heap collections");  // hardening: cached; collections may overlap
    uint64_t pad = (8 - obj_size % 8) % 8;
    if (pad > c.remaining()) break;
    c.skip(pad);
  }
  return cache_.emplace(address, std::move(coll)).first->second;
}

io::ByteSpan GlobalHeap::object(uint64_t collection, uint32_t index) {
  std::lock_guard<std::mutex> lock(mutex_);
  const Collection& coll = load(collection);
  auto it = coll.objects.find(index);
  if (it == coll.objects.end())
    throw FormatError("global heap object " + std::to_string(index) + " not found in collection",
                      ctx_.absolute(collection, "global heap"));
  return it->second;
}

}  // namespace weightio::hdf5
