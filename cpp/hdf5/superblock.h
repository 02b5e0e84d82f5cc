// The superblock (HDF5 spec 3.0, section II.A, versions 0-3).
#pragma once
#include <cstdint>

#include "hdf5/context.h"

namespace weightio::hdf5 {

struct Superblock {
  unsigned version = 0;
  uint64_t location = 0;  // absolute offset of the signature (0 or after a user block)
  unsigned sizeof_offsets = 8;
  unsigned sizeof_lengths = 8;
  uint64_t base_address = 0;
  uint64_t eof_address = 0;
  uint64_t extension_address = io::kUndefinedAddress;  // v2/v3
  uint64_t root_object_header = io::kUndefinedAddress;
  // v0/v1: the root symbol table entry's scratch pad, when it caches the group's B-tree/heap.
  uint64_t root_btree = io::kUndefinedAddress;
  uint64_t root_heap = io::kUndefinedAddress;
};

// Finds the signature at 0, 512, 1024, 2048, ... and parses the superblock. Sets the
// context's sizes and base address.
Superblock read_superblock(Context& ctx);

}  // namespace weightio::hdf5
