// Chunk indexes (HDF5 spec 3.0, IV.A.2.i, layout version 4, and III.A.1 for version 1-3):
// each turns its on-disk structure into the list of allocated chunks of a dataset.
#pragma once
#include <vector>

#include "hdf5/btree_v1.h"
#include "hdf5/messages/dataspace.h"
#include "hdf5/messages/layout.h"

namespace weightio::hdf5 {

struct ChunkGrid {
  std::vector<uint64_t> chunk;      // chunk dimensions (elements)
  std::vector<uint64_t> dims;       // dataset dimensions now
  std::vector<uint64_t> max_dims;   // maximum dimensions (kUnlimited allowed)
  uint64_t chunk_bytes = 0;         // bytes of one decoded chunk
  bool filtered = false;

  // Chunks per dimension covering `extent` (ceil division).
  std::vector<uint64_t> chunks_per_dim(const std::vector<uint64_t>& extent) const;
  // Element offset of the chunk at linear index `index` of a row-major grid `counts`
  // (a count of 0 marks an unbounded dimension, which must come first).
  std::vector<uint64_t> offset_of(uint64_t index, const std::vector<uint64_t>& counts) const;
};

// All allocated chunks of the dataset. Chunks that were never written are absent.
std::vector<ChunkRecord> collect_chunks(const Context& ctx, const Layout& layout, const ChunkGrid& grid);

// One function per index type (chunk_index/<type>.cpp).
namespace chunk_index {
std::vector<ChunkRecord> btree_v1(const Context& ctx, const Layout& layout, const ChunkGrid& grid);
std::vector<ChunkRecord> single_chunk(const Context& ctx, const Layout& layout, const ChunkGrid& grid);
std::vector<ChunkRecord> implicit(const Context& ctx, const Layout& layout, const ChunkGrid& grid);
std::vector<ChunkRecord> fixed_array(const Context& ctx, const Layout& layout, const ChunkGrid& grid);
std::vector<ChunkRecord> extensible_array(const Context& ctx, const Layout& layout, const ChunkGrid& grid);
std::vector<ChunkRecord> btree_v2(const Context& ctx, const Layout& layout, const ChunkGrid& grid);

// Opens a block of a fixed or extensible array ("FADB", "EAIB", "EASB", "EADB"): checks
// the signature and version 0, skips the client id and the owning header's address.
// `start` receives the block's first byte within the cursor (where its checksum starts).
io::Cursor open_array_block(const Context& ctx, uint64_t address, const char* signature, const char* what,
                            size_t& start);

// Reads one array element of a fixed or extensible array: address, and for filtered
// chunks the stored size and filter mask.
ChunkRecord read_array_element(const Context& ctx, io::Cursor& c, unsigned element_size, bool filtered);
}  // namespace chunk_index

}  // namespace weightio::hdf5
