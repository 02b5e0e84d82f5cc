// Version 1 B-trees (HDF5 spec 3.0, III.A.1): group nodes (type 0) and raw data chunk
// nodes (type 1); plus the symbol table nodes (III.B) that group B-trees point to.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "hdf5/context.h"

namespace weightio::hdf5 {

// One entry of a symbol table node.
struct SymbolTableEntry {
  uint64_t name_offset = 0;  // into the group's local heap
  uint64_t object_header = io::kUndefinedAddress;
  uint32_t cache_type = 0;   // 2: soft link, scratch holds the link value's heap offset
  uint32_t soft_link_offset = 0;
};

// Calls `visit` for every symbol table entry of the group B-tree at `address`, in key order.
void walk_group_btree(const Context& ctx, uint64_t address, const std::function<void(const SymbolTableEntry&)>& visit);

struct ChunkRecord {
  std::vector<uint64_t> offset;  // element offset of the chunk's first element, per dimension
  uint64_t address = io::kUndefinedAddress;
  uint64_t size = 0;             // stored (possibly filtered) bytes
  uint32_t filter_mask = 0;      // bit i set: filter i was not applied
};

// Calls `visit` for every chunk of the chunk B-tree at `address`. `rank` is the dataset rank.
void walk_chunk_btree(const Context& ctx, uint64_t address, size_t rank, const std::function<void(const ChunkRecord&)>& visit);

}  // namespace weightio::hdf5
