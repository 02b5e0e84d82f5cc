#include "hdf5/dataset.h"

#include <algorithm>
#include <set>

#include "convert/hyperslab.h"
#include "hdf5/chunk_index/chunk_index.h"
#include "hdf5/filters/filters.h"
#include "hdf5/local_heap.h"

namespace weightio::hdf5 {

bool is_dataset(const ObjectHeader& header) { return header.find(kMsgLayout) != nullptr; }

Dataset::Dataset(const Context& ctx, const ObjectHeader& header) : ctx_(ctx), address_(header.address) {
  const RawMessage* space = header.find(kMsgDataspace);
  const RawMessage* type = header.find(kMsgDatatype);
  const RawMessage* layout = header.find(kMsgLayout);
  if (!space || !type || !layout) throw FormatError("dataset header lacks a dataspace, datatype or layout message", header.address);
  space_ = parse_dataspace(ctx, io::Cursor(space->data, space->offset));
  type_ = parse_datatype(ctx, io::Cursor(type->data, type->offset), type->flags & kMsgFlagShared);
  layout_ = parse_layout(ctx, io::Cursor(layout->data, layout->offset));
  if (const RawMessage* p = header.find(kMsgFilterPipeline)) pipeline_ = parse_filter_pipeline(io::Cursor(p->data, p->offset));
  if (const RawMessage* f = header.find(kMsgFillValue)) {
    fill_ = parse_fill_value(io::Cursor(f->data, f->offset));
  } else if (const RawMessage* fo = header.find(kMsgFillValueOld)) {
    fill_ = parse_fill_value_old(io::Cursor(fo->data, fo->offset));
  }
  if (const RawMessage* e = header.find(kMsgExternalFiles)) {
    external_ = true;
    external_message_ = *e;
  }
  if (layout_.cls == Layout::Class::kChunked && layout_.chunk_dims.size() != space_.dims.size())
    throw FormatError("chunk rank differs from dataset rank", ctx.absolute(address_, "dataset"));
  // Hardening: elements * element size must not wrap. It did for hostile extents, and
  // stored_span() then bounds-checked a wrapped (small) size and the copy read past the
  // file; the bindings size output buffers with the same product. numpy cannot hold more
  // than 2^63 - 1 bytes either, and checks the product of the nonzero dimensions (so a
  // (2^62, 0) float32 array is refused too).
  if (!space_.fits_numpy(type_.size))
    throw FormatError("dataset is larger than 2^63 bytes", ctx.absolute(address_, "dataset"));
}

convert::ElementType Dataset::stored_type() const {
  using convert::Kind;
  const DataType& t = type_;
  switch (t.cls) {
    case DataType::Class::kFixedPoint:
      if (!t.ieee) break;
      return {t.is_signed ? Kind::kInt : Kind::kUInt, t.size, t.big_endian};
    case DataType::Class::kFloatingPoint:
      if (!t.ieee) break;
      return {Kind::kFloat, t.size, t.big_endian};
    case DataType::Class::kEnum:
      if (t.is_bool) return {Kind::kBool, 1, false};
      if (t.base && t.base->ieee) return {t.base->is_signed ? Kind::kInt : Kind::kUInt, t.base->size, t.base->big_endian};
      break;
    case DataType::Class::kString:
    case DataType::Class::kOpaque:
      if (t.size == 0 || t.size > INT32_MAX) break;  // hardening: numpy's itemsize limit
      return {Kind::kRaw, t.size, false};
    default:
      break;
  }
  throw UnsupportedFeatureError(t.describe() + " datatype");
}

void Dataset::check_readable() const {
  stored_type();
  if (external_) throw UnsupportedFeatureError("external storage (data in other files)");
  if (layout_.cls == Layout::Class::kVirtual) throw UnsupportedFeatureError("virtual dataset layout");
  if (layout_.cls == Layout::Class::kChunked) {
    for (const Filter& f : pipeline_.filters)
      if (f.id != kFilterDeflate && f.id != kFilterShuffle && f.id != kFilterFletcher32)
        throw UnsupportedFeatureError("filter '" + filter_name(f) + "'");
    if (layout_.chunk_element_size != type_.size) throw FormatError("chunk element size differs from the datatype size");
  }
}

bool Dataset::stored_span(io::ByteSpan* out) const {
  uint64_t bytes = num_elements() * type_.size;
  if (layout_.cls == Layout::Class::kCompact) {
    if (layout_.compact_data.size() < bytes) throw FormatError("compact dataset data too short", layout_.compact_offset);
    *out = io::ByteSpan(layout_.compact_data.data(), static_cast<size_t>(bytes));
    return true;
  }
  if (layout_.cls != Layout::Class::kContiguous || layout_.address == io::kUndefinedAddress || external_) return false;
  if (layout_.size != UINT64_MAX && layout_.size < bytes)
    throw FormatError("contiguous storage is smaller than the dataset", ctx_.absolute(layout_.address, "dataset data"));
  *out = ctx_.span(layout_.address, bytes, "contiguous dataset data");
  return true;
}

std::vector<Dataset::ExternalFile> Dataset::external_files() const {
  std::vector<ExternalFile> out;
  if (!external_) return out;
  io::Cursor c(external_message_.data, external_message_.offset);
  if (c.u8() != 1) c.fail("unsupported external data files message version");
  c.skip(3);
  c.u16();  // allocated slots
  unsigned used = c.u16();
  LocalHeap heap(ctx_, ctx_.read_offset(c));
  for (unsigned i = 0; i < used; ++i) {
    uint64_t name = ctx_.read_length(c);
    uint64_t offset = ctx_.read_length(c);
    uint64_t size = ctx_.read_length(c);
    out.push_back(ExternalFile{heap.string_at(name), offset, size});
  }
  return out;
}

uint64_t Dataset::storage_size() const {
  switch (layout_.cls) {
    case Layout::Class::kCompact:
      return layout_.compact_data.size();
    case Layout::Class::kContiguous:
      if (layout_.address == io::kUndefinedAddress) return 0;
      return layout_.size != UINT64_MAX ? layout_.size : num_elements() * type_.size;
    case Layout::Class::kChunked: {
      uint64_t total = 0;
      for (const ChunkRecord& r : chunks()) total += r.size;
      return total;
    }
    case Layout::Class::kVirtual:
      break;
  }
  return 0;
}

uint64_t Dataset::contiguous_file_offset() const { return ctx_.absolute(layout_.address, "dataset data"); }

void Dataset::fill_output(uint8_t* out, uint64_t n, const convert::ElementType& to) const {
  std::vector<uint8_t> value(to.size, 0);
  if (fill_.defined && fill_.value.size() == type_.size) {
    convert::convert(fill_.value.data(), stored_type(), value.data(), to, 1);
  }
  convert::fill_elements(out, value.data(), to.size, n);
}

void Dataset::read_all(uint8_t* out, const convert::ElementType& to) const {
  if (layout_.cls == Layout::Class::kChunked) {
    std::vector<uint64_t> start(space_.dims.size(), 0);
    return read(start, space_.dims, out, to);
  }
  // One block in the file (or none): the whole selection is one run, so no box to walk
  // and nothing to allocate (load_file reads thousands of small datasets this way).
  check_readable();
  const convert::ElementType from = stored_type();
  if (!convert::can_convert(from, to)) throw Error("cannot convert " + from.typestr() + " to " + to.typestr());
  const uint64_t n = num_elements();
  if (n == 0) return;
  io::ByteSpan stored;
  if (!stored_span(&stored)) return fill_output(out, n, to);  // never written
  if (convert::is_plain_copy(from, to) && layout_.cls == Layout::Class::kContiguous)
    ctx_.copy_out(stored, out);  // large blocks without mapping their pages (MappedFile::copy_out)
  else
    convert::convert(stored.data(), from, out, to, static_cast<size_t>(n));
  if (type_.cls == DataType::Class::kString && to.kind == convert::Kind::kRaw)
    normalize_fixed_strings(out, n, type_.size, type_.string_pad);
}

void Dataset::read(const std::vector<uint64_t>& start, const std::vector<uint64_t>& count, uint8_t* out,
                   const convert::ElementType& to) const {
  check_readable();
  const convert::ElementType from = stored_type();
  if (!convert::can_convert(from, to)) throw Error("cannot convert " + from.typestr() + " to " + to.typestr());
  const size_t rank = space_.dims.size();
  if (start.size() != rank || count.size() != rank) throw Error("selection rank differs from dataset rank");
  uint64_t n = 1;
  for (size_t d = 0; d < rank; ++d) {
    if (start[d] > space_.dims[d] || count[d] > space_.dims[d] - start[d]) throw Error("selection out of range");
    n *= count[d];
  }
  if (space_.kind == Dataspace::Kind::kNull || n == 0) return;
  read_stored(start, count, out, to);
  if (type_.cls == DataType::Class::kString && to.kind == convert::Kind::kRaw)
    normalize_fixed_strings(out, n, type_.size, type_.string_pad);
}

void Dataset::read_stored(const std::vector<uint64_t>& start, const std::vector<uint64_t>& count, uint8_t* out,
                          const convert::ElementType& to) const {
  const convert::ElementType from = stored_type();
  const size_t rank = space_.dims.size();
  uint64_t n = 1;
  for (uint64_t c : count) n *= c;
  if (layout_.cls == Layout::Class::kChunked) return read_chunked(start, count, out, to);
  io::ByteSpan stored;
  if (!stored_span(&stored)) return fill_output(out, n, to);  // never written
  convert::Box src{&space_.dims, start};
  std::vector<uint64_t> zero(rank, 0);
  convert::Box dst{&count, zero};
  convert::copy_box(stored.data(), src, from, out, dst, to, count);
}

const std::vector<ChunkRecord>& Dataset::chunks() const {
  std::call_once(chunks_once_, [&] {
    ChunkGrid grid;
    grid.chunk = layout_.chunk_dims;
    grid.dims = space_.dims;
    grid.max_dims = space_.maxdims;
    grid.chunk_bytes = layout_.chunk_element_size;
    for (uint64_t c : grid.chunk) grid.chunk_bytes *= c;
    grid.filtered = !pipeline_.filters.empty();
    std::vector<ChunkRecord> found = collect_chunks(ctx_, layout_, grid);
    // Hardening: cached for the life of the dataset; see Context::charge. (The implicit
    // index charged its records before building them.)
    if (layout_.index != Layout::Index::kImplicit)
      ctx_.charge(found.size() * (sizeof(ChunkRecord) + 8 * grid.chunk.size() + 64), "chunk indexes");
    // Keep only chunks aligned to the grid and inside the dataset, each offset once:
    // the fill logic counts chunks, so a hostile duplicate must not hide a missing one.
    std::set<std::vector<uint64_t>> seen;
    std::set<uint64_t> addresses;
    for (ChunkRecord& r : found) {
      if (r.offset.size() != grid.chunk.size()) throw FormatError("chunk record rank differs from dataset rank");
      bool inside = true;
      for (size_t d = 0; d < grid.chunk.size(); ++d)
        inside = inside && r.offset[d] % grid.chunk[d] == 0 && r.offset[d] < grid.dims[d];
      if (!inside || !seen.insert(r.offset).second) continue;
      // Hardening: two chunks never share storage. Without this a hostile index could point
      // thousands of chunks at one small deflate stream that inflates to a 4 GiB chunk
      // (each decoded in full for a few elements of output): work out of all proportion.
      if (r.address != io::kUndefinedAddress && !addresses.insert(r.address).second)
        throw FormatError("two chunks stored at the same address", ctx_.absolute(r.address, "chunk"));
      chunks_.push_back(std::move(r));
    }
  });
  return chunks_;
}

void Dataset::read_chunked(const std::vector<uint64_t>& start, const std::vector<uint64_t>& count, uint8_t* out,
                           const convert::ElementType& to) const {
  const size_t rank = count.size();
  const convert::ElementType from = stored_type();
  const std::vector<uint64_t>& chunk = layout_.chunk_dims;
  uint64_t chunk_bytes = layout_.chunk_element_size;
  for (uint64_t c : chunk) chunk_bytes *= c;

  // Which grid chunks does the selection touch, and are they all stored?
  uint64_t touched = 1;
  for (size_t d = 0; d < rank; ++d) {
    uint64_t first = start[d] / chunk[d], last = (start[d] + count[d] - 1) / chunk[d];
    touched *= last - first + 1;
  }
  std::vector<const ChunkRecord*> hits;
  for (const ChunkRecord& r : chunks()) {
    bool hit = true;
    for (size_t d = 0; d < rank && hit; ++d) hit = r.offset[d] < start[d] + count[d] && r.offset[d] + chunk[d] > start[d];
    if (hit) hits.push_back(&r);
  }
  uint64_t n = 1;
  for (uint64_t c : count) n *= c;
  if (hits.size() < touched) fill_output(out, n, to);  // some chunks were never written

  std::vector<uint64_t> zero(rank, 0);
  for (const ChunkRecord* r : hits) {
    if (r->address == io::kUndefinedAddress) continue;
    bool partial_edge = false;
    for (size_t d = 0; d < rank; ++d) partial_edge = partial_edge || r->offset[d] + chunk[d] > space_.dims[d];
    bool unfiltered = pipeline_.filters.empty() || (partial_edge && (layout_.flags & 0x01));
    std::vector<uint8_t> decoded;
    const uint8_t* data;
    if (unfiltered) {
      data = ctx_.span(r->address, chunk_bytes, "chunk").data();
    } else {
      if (r->size > limits::kMaxChunkBytes) throw FormatError("stored chunk larger than 4 GiB");
      io::ByteSpan stored = ctx_.span(r->address, r->size, "chunk");
      decoded = filters::decode_chunk(pipeline_, r->filter_mask, stored, static_cast<size_t>(chunk_bytes), type_.size);
      data = decoded.data();
    }
    // Intersection of this chunk with the selection.
    std::vector<uint64_t> src_start(rank), dst_start(rank), box(rank);
    for (size_t d = 0; d < rank; ++d) {
      uint64_t lo = std::max(r->offset[d], start[d]);
      uint64_t hi = std::min(r->offset[d] + chunk[d], start[d] + count[d]);
      src_start[d] = lo - r->offset[d];
      dst_start[d] = lo - start[d];
      box[d] = hi - lo;
    }
    convert::Box src{&chunk, src_start};
    convert::Box dst{&count, dst_start};
    convert::copy_box(data, src, from, out, dst, to, box);
  }
}

}  // namespace weightio::hdf5
