// Global heap collections (HDF5 spec 3.0, III.E): hold variable-length data such as
// variable-length strings.
#pragma once
#include <cstdint>
#include <map>
#include <mutex>

#include "hdf5/context.h"

namespace weightio::hdf5 {

class GlobalHeap {
 public:
  explicit GlobalHeap(const Context& ctx) : ctx_(ctx) {}
  // The bytes of object `index` in the collection at `collection`.
  io::ByteSpan object(uint64_t collection, uint32_t index);

 private:
  struct Collection {
    std::map<uint32_t, io::ByteSpan> objects;
  };
  const Collection& load(uint64_t address);

  const Context& ctx_;
  std::mutex mutex_;
  std::map<uint64_t, Collection> cache_;
};

}  // namespace weightio::hdf5
