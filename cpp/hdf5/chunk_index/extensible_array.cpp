// Extensible array chunk index (HDF5 spec 3.0, III.H): header "EAHD", index block "EAIB",
// secondary blocks "EASB", data blocks "EADB" (optionally paged). Used for datasets with
// exactly one unlimited dimension; the array index swizzles that dimension to the front.
#include <algorithm>
#include <set>
#include <string>

#include "hdf5/chunk_index/chunk_index.h"

namespace weightio::hdf5::chunk_index {

namespace {

struct Params {
  unsigned element_size = 0;
  unsigned max_bits = 0;
  uint64_t index_elements = 0;
  uint64_t min_data_elements = 0;
  uint64_t min_data_pointers = 0;
  unsigned page_bits = 0;
  uint64_t max_index_set = 0;
  uint64_t index_block = io::kUndefinedAddress;
};

struct SuperBlockInfo {
  uint64_t data_blocks = 0;     // data blocks in this super block
  uint64_t block_elements = 0;  // elements per data block
  uint64_t start_index = 0;     // first element (after the index block's own elements)
};

class Reader {
 public:
  Reader(const Context& ctx, const Params& p, bool filtered, uint64_t chunk_bytes)
      : ctx_(ctx), p_(p), filtered_(filtered), chunk_bytes_(chunk_bytes) {
    unsigned min_bits = 0;
    while ((uint64_t{1} << min_bits) < p.min_data_elements) ++min_bits;
    unsigned nsblks = 1 + p.max_bits - min_bits;
    uint64_t start = 0;
    for (unsigned s = 0; s < nsblks && s < 64; ++s) {
      SuperBlockInfo info;
      info.data_blocks = uint64_t{1} << (s / 2);
      info.block_elements = p.min_data_elements << ((s + 1) / 2);
      info.start_index = start;
      start += info.data_blocks * info.block_elements;
      sblocks_.push_back(info);
    }
    offset_size_ = (p.max_bits + 7) / 8;
  }

  // Calls `emit(index, record)` for every element below max_index_set.
  template <class Emit>
  void read(Emit emit) {
    size_t start;
    io::Cursor c = open_array_block(ctx_, p_.index_block, "EAIB", "extensible array index block", start);
    // The index block points straight at the data blocks of the first 2*log2(min pointers)
    // super blocks, and at the super blocks after those.
    unsigned log2_pointers = 0;
    while ((uint64_t{1} << (log2_pointers + 1)) <= p_.min_data_pointers) ++log2_pointers;
    unsigned direct_sblocks = static_cast<unsigned>(std::min<size_t>(2 * log2_pointers, sblocks_.size()));
    uint64_t ndblk = 2 * (p_.min_data_pointers - 1);
    uint64_t nsblk = sblocks_.size() - direct_sblocks;
    c.need(p_.index_elements * p_.element_size + (ndblk + nsblk) * ctx_.sizeof_offsets() + 4);
    for (uint64_t i = 0; i < p_.index_elements; ++i) {
      ChunkRecord r = element(c);
      if (i < p_.max_index_set) emit(i, r);
    }
    std::vector<uint64_t> dblocks, sblocks;
    for (uint64_t i = 0; i < ndblk; ++i) dblocks.push_back(ctx_.read_offset(c));
    for (uint64_t i = 0; i < nsblk; ++i) sblocks.push_back(ctx_.read_offset(c));
    verify_checksum_at(c, start, "extensible array index block");
    // Data blocks of the first super blocks hang straight off the index block.
    uint64_t d = 0;
    for (unsigned s = 0; s < direct_sblocks; ++s) {
      for (uint64_t k = 0; k < sblocks_[s].data_blocks && d < dblocks.size(); ++k, ++d) {
        uint64_t first = p_.index_elements + sblocks_[s].start_index + k * sblocks_[s].block_elements;
        read_data_block(dblocks[d], first, sblocks_[s].block_elements, nullptr, emit);
      }
    }
    for (uint64_t i = 0; i < nsblk; ++i) read_super_block(sblocks[i], direct_sblocks + static_cast<unsigned>(i), emit);
  }

 private:
  ChunkRecord element(io::Cursor& c) {
    ChunkRecord r = read_array_element(ctx_, c, p_.element_size, filtered_);
    if (!filtered_) r.size = chunk_bytes_;
    return r;
  }
  bool paged(uint64_t block_elements) const { return block_elements > (uint64_t{1} << p_.page_bits); }

  // Hardening: every super block and data block has one parent. Pointers repeated
  // across (or within) blocks re-read one block per pointer, emitting up to a block's
  // elements each time: records quadratic in the file size.
  void claim(uint64_t address, const char* what) {
    if (!claimed_.insert(address).second) throw FormatError(std::string(what) + " referenced twice", ctx_.absolute(address, what));
  }

  template <class Emit>
  void read_super_block(uint64_t address, unsigned s, Emit& emit) {
    if (address == io::kUndefinedAddress) return;
    claim(address, "extensible array super block");
    const SuperBlockInfo& info = sblocks_[s];
    size_t start;
    io::Cursor c = open_array_block(ctx_, address, "EASB", "extensible array super block", start);
    c.uint_le(offset_size_);  // block offset
    uint64_t pages = paged(info.block_elements) ? info.block_elements >> p_.page_bits : 0;
    uint64_t bitmap_size = (pages + 7) / 8;
    c.need(info.data_blocks * (bitmap_size + ctx_.sizeof_offsets()));
    std::vector<io::ByteSpan> bitmaps;
    for (uint64_t k = 0; k < info.data_blocks && pages; ++k) bitmaps.push_back(c.take_span(bitmap_size));
    std::vector<uint64_t> dblocks;
    for (uint64_t k = 0; k < info.data_blocks; ++k) dblocks.push_back(ctx_.read_offset(c));
    verify_checksum_at(c, start, "extensible array super block");
    for (uint64_t k = 0; k < info.data_blocks; ++k) {
      uint64_t first = p_.index_elements + info.start_index + k * info.block_elements;
      read_data_block(dblocks[k], first, info.block_elements, pages ? &bitmaps[k] : nullptr, emit);
    }
  }

  template <class Emit>
  void read_data_block(uint64_t address, uint64_t first, uint64_t count, const io::ByteSpan* page_bitmap, Emit& emit) {
    if (address == io::kUndefinedAddress || first >= p_.max_index_set) return;
    claim(address, "extensible array data block");
    size_t start;
    io::Cursor c = open_array_block(ctx_, address, "EADB", "extensible array data block", start);
    c.uint_le(offset_size_);  // block offset
    if (!paged(count)) {
      c.need(count * p_.element_size + 4);
      io::Cursor check = c;
      check.skip(count * p_.element_size);
      verify_checksum_at(check, start, "extensible array data block");
      for (uint64_t i = 0; i < count; ++i) {
        ChunkRecord r = element(c);
        if (first + i < p_.max_index_set) emit(first + i, r);
      }
      return;
    }
    verify_checksum_at(c, start, "extensible array data block");
    uint64_t page_elements = uint64_t{1} << p_.page_bits;
    uint64_t pages = count / page_elements;
    uint64_t page_at = address + (c.pos() - start);
    uint64_t page_size = page_elements * p_.element_size + 4;
    for (uint64_t pg = 0; pg < pages; ++pg, page_at += page_size) {
      if (page_bitmap && !((*page_bitmap)[static_cast<size_t>(pg / 8)] & (0x80 >> (pg % 8)))) continue;
      io::Cursor pc = ctx_.block(page_at, page_size, "extensible array data block page");
      io::Cursor check = pc;
      check.skip(page_elements * p_.element_size);
      verify_checksum_at(check, 0, "extensible array data block page");
      for (uint64_t i = 0; i < page_elements; ++i) {
        ChunkRecord r = element(pc);
        uint64_t index = first + pg * page_elements + i;
        if (index < p_.max_index_set) emit(index, r);
      }
    }
  }

  const Context& ctx_;
  Params p_;
  bool filtered_;
  uint64_t chunk_bytes_;
  std::vector<SuperBlockInfo> sblocks_;
  unsigned offset_size_ = 0;
  std::set<uint64_t> claimed_;
};

}  // namespace

std::vector<ChunkRecord> extensible_array(const Context& ctx, const Layout& layout, const ChunkGrid& grid) {
  io::Cursor h = ctx.at(layout.address, "extensible array header");
  size_t start = h.pos();
  h.expect_signature("EAHD", "extensible array header");
  if (h.u8() != 0) h.fail("unsupported extensible array version");
  unsigned client = h.u8();
  Params p;
  p.element_size = h.u8();
  p.max_bits = h.u8();
  p.index_elements = h.u8();
  p.min_data_elements = h.u8();
  p.min_data_pointers = h.u8();
  p.page_bits = h.u8();
  for (int i = 0; i < 4; ++i) ctx.read_length(h);  // secondary/data block statistics
  p.max_index_set = ctx.read_length(h);
  ctx.read_length(h);  // elements realized
  p.index_block = ctx.read_offset(h);
  verify_checksum_at(h, start, "extensible array header");
  if (client > 1 || p.element_size == 0 || p.max_bits == 0 || p.max_bits > 64 || p.min_data_elements == 0 ||
      p.min_data_pointers == 0 || p.page_bits > 32 || (p.min_data_elements & (p.min_data_elements - 1)) ||
      (p.min_data_pointers & (p.min_data_pointers - 1)))
    h.fail("bad extensible array parameters");
  std::vector<ChunkRecord> out;
  if (p.index_block == io::kUndefinedAddress) return out;

  // The unlimited dimension is swizzled to the front; the others keep their order.
  size_t rank = grid.chunk.size();
  size_t unlimited = 0;
  for (size_t d = 0; d < rank; ++d)
    if (grid.max_dims[d] == Dataspace::kUnlimited) unlimited = d;
  std::vector<uint64_t> counts = grid.chunks_per_dim(grid.max_dims);
  std::vector<uint64_t> swizzled_counts;
  std::vector<uint64_t> swizzled_chunk;
  swizzled_counts.push_back(0);  // the unlimited dimension: slowest, unbounded
  swizzled_chunk.push_back(grid.chunk[unlimited]);
  for (size_t d = 0; d < rank; ++d)
    if (d != unlimited) swizzled_counts.push_back(counts[d]), swizzled_chunk.push_back(grid.chunk[d]);
  ChunkGrid swizzled;
  swizzled.chunk = swizzled_chunk;

  Reader reader(ctx, p, client == 1, grid.chunk_bytes);
  reader.read([&](uint64_t index, ChunkRecord& r) {
    if (r.address == io::kUndefinedAddress) return;
    std::vector<uint64_t> s = swizzled.offset_of(index, swizzled_counts);
    r.offset.assign(rank, 0);
    r.offset[unlimited] = s[0];
    for (size_t d = 0, k = 1; d < rank; ++d)
      if (d != unlimited) r.offset[d] = s[k++];
    out.push_back(std::move(r));
  });
  return out;
}

}  // namespace weightio::hdf5::chunk_index
