// Fixed array chunk index: header "FAHD", data block "FADB", optional pages
// (HDF5 spec 3.0, III.H).
#include "hdf5/chunk_index/chunk_index.h"

namespace weightio::hdf5::chunk_index {

std::vector<ChunkRecord> fixed_array(const Context& ctx, const Layout& layout, const ChunkGrid& grid) {
  io::Cursor h = ctx.at(layout.address, "fixed array header");
  size_t start = h.pos();
  h.expect_signature("FAHD", "fixed array header");
  if (h.u8() != 0) h.fail("unsupported fixed array version");
  unsigned client = h.u8();
  unsigned entry_size = h.u8();
  unsigned page_bits = h.u8();
  uint64_t max_entries = ctx.read_length(h);
  uint64_t dblock = ctx.read_offset(h);
  verify_checksum_at(h, start, "fixed array header");
  if (client > 1 || entry_size == 0 || page_bits > 32) h.fail("bad fixed array parameters");
  // Hardening: the entries must fit in the file (each takes entry_size bytes); this keeps
  // max_entries * entry_size and the page arithmetic below from wrapping.
  if (max_entries > ctx.bytes().size() / entry_size) h.fail("fixed array has more entries than the file can hold");
  bool filtered = client == 1;

  std::vector<uint64_t> counts = grid.chunks_per_dim(grid.max_dims);
  std::vector<ChunkRecord> out;
  if (dblock == io::kUndefinedAddress) return out;

  size_t dstart;
  io::Cursor d = open_array_block(ctx, dblock, "FADB", "fixed array data block", dstart);
  const uint64_t page_elements = uint64_t{1} << page_bits;
  auto emit = [&](io::Cursor& c, uint64_t index) {
    ChunkRecord r = read_array_element(ctx, c, entry_size, filtered);
    if (r.address == io::kUndefinedAddress) return;
    if (!filtered) r.size = grid.chunk_bytes;
    r.offset = grid.offset_of(index, counts);
    out.push_back(std::move(r));
  };
  if (max_entries <= page_elements) {
    d.need(max_entries * entry_size + 4);
    io::Cursor check = d;
    check.skip(max_entries * entry_size);
    verify_checksum_at(check, dstart, "fixed array data block");
    for (uint64_t i = 0; i < max_entries; ++i) emit(d, i);
    return out;
  }
  // Paged: a bitmap says which pages exist; pages follow the data block.
  uint64_t pages = (max_entries + page_elements - 1) / page_elements;
  io::ByteSpan bitmap = d.take_span((pages + 7) / 8);
  verify_checksum_at(d, dstart, "fixed array data block");
  uint64_t page_at = dblock + (d.pos() - dstart);
  for (uint64_t p = 0; p < pages; ++p) {
    uint64_t n = p + 1 == pages ? max_entries - p * page_elements : page_elements;
    uint64_t page_size = n * entry_size + 4;
    if (bitmap[static_cast<size_t>(p / 8)] & (0x80 >> (p % 8))) {
      io::Cursor pc = ctx.block(page_at, page_size, "fixed array page");
      io::Cursor check = pc;
      check.skip(n * entry_size);
      verify_checksum_at(check, 0, "fixed array page");
      for (uint64_t i = 0; i < n; ++i) emit(pc, p * page_elements + i);
    }
    page_at += page_size;
  }
  return out;
}

}  // namespace weightio::hdf5::chunk_index
