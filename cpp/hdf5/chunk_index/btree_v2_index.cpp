// Version 2 B-tree chunk index (record types 10 and 11), used for datasets with more than
// one unlimited dimension. Records hold scaled (chunk-unit) offsets.
#include "hdf5/btree_v2.h"
#include "hdf5/chunk_index/chunk_index.h"

namespace weightio::hdf5::chunk_index {

std::vector<ChunkRecord> btree_v2(const Context& ctx, const Layout& layout, const ChunkGrid& grid) {
  BTreeV2 tree(ctx, layout.address);
  bool filtered = tree.type() == 11;
  if (tree.type() != 10 && tree.type() != 11) throw FormatError("chunk index B-tree has unexpected type " + std::to_string(tree.type()));
  size_t rank = grid.chunk.size();
  size_t fixed = ctx.sizeof_offsets() + 8 * rank + (filtered ? 4 : 0);
  if (tree.record_size() < fixed || (!filtered && tree.record_size() != fixed) || tree.record_size() - fixed > 8)
    throw FormatError("chunk index B-tree record size does not fit the dataset rank");
  unsigned size_len = static_cast<unsigned>(tree.record_size() - fixed);
  std::vector<ChunkRecord> out;
  tree.for_each([&](io::Cursor& c) {
    ChunkRecord r;
    r.address = ctx.read_offset(c);
    if (filtered) {
      r.size = c.uint_le(size_len);
      r.filter_mask = c.u32();
    } else {
      r.size = grid.chunk_bytes;
    }
    for (size_t d = 0; d < rank; ++d) {
      uint64_t scaled = c.u64();
      if (scaled > UINT64_MAX / grid.chunk[d]) c.fail("chunk offset overflows");
      r.offset.push_back(scaled * grid.chunk[d]);
    }
    out.push_back(std::move(r));
  });
  return out;
}

}  // namespace weightio::hdf5::chunk_index
