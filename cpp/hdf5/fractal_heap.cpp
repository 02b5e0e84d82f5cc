#include "hdf5/fractal_heap.h"

#include <algorithm>

#include "hdf5/btree_v2.h"

namespace weightio::hdf5 {

namespace {
unsigned log2_floor(uint64_t v) {
  unsigned r = 0;
  while (v >>= 1) ++r;
  return r;
}
bool is_power_of_two(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }
unsigned limit_encoded_size(uint64_t v) { return log2_floor(v) / 8 + 1; }
}  // namespace

FractalHeap::FractalHeap(const Context& ctx, uint64_t address) : ctx_(ctx), address_(address) {
  io::Cursor c = ctx.at(address, "fractal heap header");
  size_t start = c.pos();
  c.expect_signature("FRHP", "fractal heap header");
  if (c.u8() != 0) c.fail("unsupported fractal heap version");
  id_length_ = c.u16();
  filter_length_ = c.u16();
  flags_ = c.u8();
  max_managed_size_ = c.u32();
  ctx.read_length(c);  // next huge object id
  huge_btree_ = ctx.read_offset(c);
  ctx.read_length(c);  // free space in managed blocks
  ctx.read_offset(c);  // free space manager
  ctx.read_length(c);  // managed space
  ctx.read_length(c);  // allocated managed space
  ctx.read_length(c);  // direct block allocation iterator offset
  ctx.read_length(c);  // managed objects
  ctx.read_length(c);  // huge objects size
  ctx.read_length(c);  // huge objects count
  ctx.read_length(c);  // tiny objects size
  ctx.read_length(c);  // tiny objects count
  width_ = c.u16();
  start_block_size_ = ctx.read_length(c);
  max_direct_size_ = ctx.read_length(c);
  max_heap_bits_ = c.u16();
  c.u16();  // starting rows of the root indirect block
  root_ = ctx.read_offset(c);
  root_rows_ = c.u16();
  if (filter_length_ > 0) {
    ctx.read_length(c);  // filtered root direct block size
    c.u32();             // filter mask
    c.skip(filter_length_);
  }
  verify_checksum_at(c, start, "fractal heap header");
  if (!is_power_of_two(width_) || !is_power_of_two(start_block_size_) || !is_power_of_two(max_direct_size_) ||
      max_direct_size_ < start_block_size_ || max_heap_bits_ == 0 || max_heap_bits_ > 64 || id_length_ == 0 ||
      root_rows_ > limits::kMaxHeapBlockRows)
    c.fail("inconsistent fractal heap parameters");
  // Hardening: the doubling table must fit the heap's address space, as HDF5 requires
  // (max rows = max_heap_bits - log2(width * start block size) + 1). Otherwise the row
  // arithmetic below overflows: width * start_block_size wrapped to 0 and row_block_size()
  // shifted to 0, a division by zero in managed().
  const unsigned first_row_bits = log2_floor(width_) + log2_floor(start_block_size_);
  if (first_row_bits > max_heap_bits_ || log2_floor(max_direct_size_) > max_heap_bits_ ||
      root_rows_ > max_heap_bits_ - first_row_bits + 1)
    c.fail("fractal heap doubling table does not fit its address space");
  max_direct_rows_ = log2_floor(max_direct_size_) - log2_floor(start_block_size_) + 2;
  heap_offset_size_ = (max_heap_bits_ + 7) / 8;
  unsigned max_dblock_offset_size = (log2_floor(max_direct_size_) + 7) / 8;
  unsigned max_managed_size = limit_encoded_size(max_managed_size_);
  heap_length_size_ = max_dblock_offset_size < max_managed_size ? max_dblock_offset_size : max_managed_size;
}

void FractalHeap::verify_once(uint64_t block, const std::function<void()>& verify) const {
  // Hardening: remembered per file (Context), not per heap object; see block_verified().
  if (ctx_.block_verified(block)) return;
  verify();
  ctx_.mark_block_verified(block);
}

io::ByteSpan FractalHeap::object(io::ByteSpan id) const {
  io::Cursor c(id, 0);
  uint8_t first = c.u8();
  if ((first >> 6) != 0) c.fail("unsupported fractal heap ID version");
  unsigned type = (first >> 4) & 0x03;
  if (type == 0) {
    uint64_t offset = c.uint_le(heap_offset_size_);
    uint64_t length = c.uint_le(heap_length_size_);
    return managed(offset, length);
  }
  if (type == 2) {  // tiny: the object lives inside the ID
    bool extended = id_length_ > 18;
    uint64_t length = (first & 0x0f) + 1;
    if (extended) length = (uint64_t{first & 0x0fu} << 8 | c.u8()) + 1;
    return c.take_span(length);
  }
  if (type == 1) return huge(c);
  c.fail("bad fractal heap ID type");
}

io::ByteSpan FractalHeap::huge(io::Cursor& id) const {
  if (filter_length_ > 0) throw UnsupportedFeatureError("filtered huge objects in a fractal heap");
  unsigned o = ctx_.sizeof_offsets(), l = ctx_.sizeof_lengths();
  if (id_length_ >= 1 + o + l) {  // the ID holds the object's address and length directly
    uint64_t addr = ctx_.read_offset(id);
    uint64_t len = ctx_.read_length(id);
    return ctx_.span(addr, len, "fractal heap huge object");
  }
  // Otherwise the ID is a key into the huge-object v2 B-tree (record type 1).
  unsigned key_size = id_length_ - 1 < 8 ? id_length_ - 1 : 8;
  uint64_t key = id.uint_le(key_size);
  if (huge_btree_ == io::kUndefinedAddress) id.fail("fractal heap has no huge object index");
  BTreeV2 tree(ctx_, huge_btree_);
  if (tree.type() != 1) id.fail("unexpected huge object index type");
  io::ByteSpan found;
  bool ok = false;
  tree.for_each([&](io::Cursor& r) {
    uint64_t addr = ctx_.read_offset(r);
    uint64_t len = ctx_.read_length(r);
    uint64_t rec_id = ctx_.read_length(r);
    if (!ok && rec_id == key) {
      found = ctx_.span(addr, len, "fractal heap huge object");
      ok = true;
    }
  });
  if (!ok) id.fail("huge object not found in fractal heap");
  return found;
}

io::ByteSpan FractalHeap::managed(uint64_t offset, uint64_t length) const {
  if (filter_length_ > 0) throw UnsupportedFeatureError("filtered fractal heap blocks");
  uint64_t block = root_;
  uint64_t block_offset = 0;  // heap offset where the current block starts
  unsigned rows = root_rows_;
  uint64_t block_size = start_block_size_;
  const uint64_t first_row_span = uint64_t{width_} * start_block_size_;
  for (int depth = 0;; ++depth) {
    if (depth > 64) throw FormatError("fractal heap indirect blocks nest too deep", ctx_.absolute(address_, "fractal heap"));
    if (rows == 0) break;  // `block` is a direct block
    // An indirect block: find the row and column that cover `offset`.
    io::Cursor c = ctx_.at(block, "fractal heap indirect block");
    size_t start = c.pos();
    c.expect_signature("FHIB", "fractal heap indirect block");
    if (c.u8() != 0) c.fail("unsupported fractal heap indirect block version");
    ctx_.read_offset(c);  // heap header address
    uint64_t stored_offset = c.uint_le(heap_offset_size_);
    if (stored_offset != block_offset) c.fail("fractal heap indirect block offset mismatch");
    if (offset < block_offset) c.fail("fractal heap offset out of range");
    uint64_t rel = offset - block_offset;
    unsigned row, col;
    if (rel < first_row_span) {
      row = 0;
      col = static_cast<unsigned>(rel / start_block_size_);
    } else {
      unsigned high = log2_floor(rel);
      row = high - log2_floor(first_row_span) + 1;
      if (row >= rows) c.fail("fractal heap offset beyond indirect block");
      col = static_cast<unsigned>((rel - (uint64_t{1} << high)) / row_block_size(row));
    }
    if (row >= rows || col >= width_) c.fail("fractal heap offset beyond indirect block");
    size_t entry = size_t{row} * width_ + col;
    size_t direct_entries = size_t{rows < max_direct_rows_ ? rows : max_direct_rows_} * width_;
    size_t total_entries = size_t{rows} * width_;
    c.need(total_entries * ctx_.sizeof_offsets() + 4);
    // Verify the block's checksum before trusting its entries.
    verify_once(block, [&] {
      io::Cursor all = c;
      all.skip(total_entries * ctx_.sizeof_offsets());
      verify_checksum_at(all, start, "fractal heap indirect block");
    });
    c.skip(entry * ctx_.sizeof_offsets());
    uint64_t child = ctx_.read_offset(c);
    if (child == io::kUndefinedAddress) c.fail("fractal heap object lies in an unallocated block");
    block_offset += row_offset(row) + col * row_block_size(row);
    block_size = row_block_size(row);
    block = child;
    if (entry < direct_entries) {
      rows = 0;
    } else {
      rows = log2_floor(block_size) - log2_floor(first_row_span) + 1;
      if (rows > limits::kMaxHeapBlockRows) c.fail("fractal heap child indirect block too large");
    }
  }
  // A direct block.
  io::Cursor c = ctx_.block(block, block_size, "fractal heap direct block");
  c.expect_signature("FHDB", "fractal heap direct block");
  if (c.u8() != 0) c.fail("unsupported fractal heap direct block version");
  ctx_.read_offset(c);
  uint64_t stored_offset = c.uint_le(heap_offset_size_);
  if (stored_offset != block_offset) c.fail("fractal heap direct block offset mismatch");
  size_t header_end = c.pos() + ((flags_ & 0x02) ? 4 : 0);
  if (flags_ & 0x02) {
    // The checksum covers the whole block with the checksum field zeroed.
    size_t at = c.pos();
    verify_once(block, [&] {
      io::Cursor sum = c;
      uint32_t stored = sum.u32();
      std::vector<uint8_t> copy(c.span().data(), c.span().data() + c.span().size());
      std::fill(copy.begin() + static_cast<long>(at), copy.begin() + static_cast<long>(at) + 4, 0);
      verify_checksum(io::ByteSpan(copy.data(), copy.size()), stored, "fractal heap direct block", c.file_offset() - at);
    });
  }
  uint64_t rel = offset - block_offset;
  if (rel < header_end || rel > block_size || length > block_size - rel)
    c.fail("fractal heap object out of its direct block");
  c.seek(static_cast<size_t>(rel));
  return c.take_span(length);
}

}  // namespace weightio::hdf5
