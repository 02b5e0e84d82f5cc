#include "hdf5/chunk_index/chunk_index.h"

namespace weightio::hdf5 {

std::vector<uint64_t> ChunkGrid::chunks_per_dim(const std::vector<uint64_t>& extent) const {
  std::vector<uint64_t> n(extent.size());
  for (size_t d = 0; d < extent.size(); ++d) n[d] = extent[d] / chunk[d] + (extent[d] % chunk[d] != 0);
  return n;
}

std::vector<uint64_t> ChunkGrid::offset_of(uint64_t index, const std::vector<uint64_t>& counts) const {
  std::vector<uint64_t> off(counts.size());
  for (size_t d = counts.size(); d-- > 0;) {
    if (counts[d] == 0) {  // unbounded (the slowest dimension of an extensible array)
      off[d] = index * chunk[d];
      index = 0;
      continue;
    }
    off[d] = (index % counts[d]) * chunk[d];
    index /= counts[d];
  }
  return off;
}

std::vector<ChunkRecord> collect_chunks(const Context& ctx, const Layout& layout, const ChunkGrid& grid) {
  if (layout.address == io::kUndefinedAddress) return {};  // nothing written yet
  switch (layout.index) {
    case Layout::Index::kBTreeV1: return chunk_index::btree_v1(ctx, layout, grid);
    case Layout::Index::kSingleChunk: return chunk_index::single_chunk(ctx, layout, grid);
    case Layout::Index::kImplicit: return chunk_index::implicit(ctx, layout, grid);
    case Layout::Index::kFixedArray: return chunk_index::fixed_array(ctx, layout, grid);
    case Layout::Index::kExtensibleArray: return chunk_index::extensible_array(ctx, layout, grid);
    case Layout::Index::kBTreeV2: return chunk_index::btree_v2(ctx, layout, grid);
  }
  return {};
}

namespace chunk_index {

io::Cursor open_array_block(const Context& ctx, uint64_t address, const char* signature, const char* what,
                            size_t& start) {
  io::Cursor c = ctx.at(address, what);
  start = c.pos();
  c.expect_signature(signature, what);
  if (c.u8() != 0) c.fail(std::string("unsupported ") + what + " version");
  c.skip(1);            // client id
  ctx.read_offset(c);   // the array header's address
  return c;
}

ChunkRecord read_array_element(const Context& ctx, io::Cursor& c, unsigned element_size, bool filtered) {
  ChunkRecord r;
  r.address = ctx.read_offset(c);
  if (filtered) {
    unsigned size_len = element_size - ctx.sizeof_offsets() - 4;
    if (element_size < ctx.sizeof_offsets() + 5 || size_len > 8) c.fail("bad filtered chunk entry size");
    r.size = c.uint_le(size_len);
    r.filter_mask = c.u32();
  } else if (element_size != ctx.sizeof_offsets()) {
    c.fail("bad chunk entry size");
  }
  return r;
}

std::vector<ChunkRecord> btree_v1(const Context& ctx, const Layout& layout, const ChunkGrid& grid) {
  std::vector<ChunkRecord> out;
  walk_chunk_btree(ctx, layout.address, grid.chunk.size(), [&](const ChunkRecord& r) { out.push_back(r); });
  return out;
}

std::vector<ChunkRecord> single_chunk(const Context&, const Layout& layout, const ChunkGrid& grid) {
  ChunkRecord r;
  r.offset.assign(grid.chunk.size(), 0);
  r.address = layout.address;
  r.size = grid.filtered ? layout.single_filtered_size : grid.chunk_bytes;
  r.filter_mask = layout.single_filter_mask;
  return {r};
}

std::vector<ChunkRecord> implicit(const Context& ctx, const Layout& layout, const ChunkGrid& grid) {
  // Every chunk of the (maximum) grid is allocated back to back, unfiltered.
  std::vector<uint64_t> counts = grid.chunks_per_dim(grid.max_dims == grid.dims ? grid.dims : grid.max_dims);
  uint64_t total = 1;
  for (uint64_t n : counts) {
    if (n != 0 && total > UINT64_MAX / n) throw FormatError("implicit chunk index overflows");
    total *= n;
  }
  if (total != 0 && grid.chunk_bytes > UINT64_MAX / total) throw FormatError("implicit chunk index overflows");
  ctx.span(layout.address, total * grid.chunk_bytes, "implicitly indexed chunks");  // bounds check once
  // Hardening: one record per chunk even when chunks are a byte each; see Context::charge.
  ctx.charge(total * (sizeof(ChunkRecord) + 8 * grid.chunk.size()), "implicit chunk index");
  std::vector<ChunkRecord> out;
  out.reserve(static_cast<size_t>(total));
  for (uint64_t i = 0; i < total; ++i) {
    ChunkRecord r;
    r.offset = grid.offset_of(i, counts);
    r.address = layout.address + i * grid.chunk_bytes;
    r.size = grid.chunk_bytes;
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace chunk_index
}  // namespace weightio::hdf5
