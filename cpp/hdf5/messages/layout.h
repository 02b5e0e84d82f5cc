// Data layout message 0x0008 (HDF5 spec 3.0, IV.A.2.i), versions 1-4; version 5 (written by
// HDF5 2.0) has version 4's fields and differs only in how wide filtered chunk sizes are in
// the chunk index, which the index readers take from the stored entry sizes.
#pragma once
#include <cstdint>
#include <vector>

#include "hdf5/context.h"

namespace weightio::hdf5 {

struct Layout {
  enum class Class { kCompact, kContiguous, kChunked, kVirtual };
  // Chunk index types of version 4 (the v1 B-tree is the only index of versions 1-3).
  enum class Index { kBTreeV1 = 0, kSingleChunk = 1, kImplicit = 2, kFixedArray = 3, kExtensibleArray = 4, kBTreeV2 = 5 };

  unsigned version = 0;
  Class cls = Class::kContiguous;

  io::ByteSpan compact_data;   // compact
  uint64_t compact_offset = 0;

  uint64_t address = io::kUndefinedAddress;  // contiguous data, or the chunk index
  uint64_t size = 0;                         // contiguous: bytes of storage

  std::vector<uint64_t> chunk_dims;  // chunked: one per dataset dimension
  uint32_t chunk_element_size = 0;
  Index index = Index::kBTreeV1;
  uint8_t flags = 0;                 // v4: bit 0 don't filter partial edge chunks, bit 1 filtered single chunk
  uint64_t single_filtered_size = 0;
  uint32_t single_filter_mask = 0;
  // Index parameters (fixed array, extensible array, v2 B-tree).
  uint8_t page_bits = 0;
  uint8_t ea_max_bits = 0, ea_index_elements = 0, ea_min_pointers = 0, ea_min_elements = 0;
};

Layout parse_layout(const Context& ctx, io::Cursor c);

}  // namespace weightio::hdf5
