#include "hdf5/messages/layout.h"

namespace weightio::hdf5 {

namespace {

void set_chunk_dims(io::Cursor& c, Layout& l, const std::vector<uint64_t>& dims) {
  // The last "dimension" of a chunk is the size of one element.
  if (dims.size() < 2 || dims.size() > limits::kMaxRank + 1) c.fail("bad chunk dimensionality");
  l.chunk_dims.assign(dims.begin(), dims.end() - 1);
  if (dims.back() == 0 || dims.back() > UINT32_MAX) c.fail("bad chunk element size");
  l.chunk_element_size = static_cast<uint32_t>(dims.back());
  uint64_t bytes = l.chunk_element_size;
  for (uint64_t d : l.chunk_dims) {
    if (d == 0) c.fail("chunk dimension of size 0");
    if (bytes > limits::kMaxChunkBytes / d) c.fail("chunk larger than 4 GiB");
    bytes *= d;
  }
}

void parse_v1_v2(const Context& ctx, io::Cursor& c, Layout& l) {
  unsigned ndims = c.u8();
  unsigned cls = c.u8();
  c.skip(5);
  if (cls > 2) c.fail("bad layout class " + std::to_string(cls));
  l.cls = static_cast<Layout::Class>(cls);
  if (l.cls != Layout::Class::kCompact) l.address = ctx.read_offset(c);
  std::vector<uint64_t> dims;
  for (unsigned i = 0; i < ndims; ++i) dims.push_back(c.u32());
  if (l.cls == Layout::Class::kChunked) {
    set_chunk_dims(c, l, dims);
  } else if (l.cls == Layout::Class::kCompact) {
    uint32_t size = c.u32();
    l.compact_offset = c.file_offset();
    l.compact_data = c.take_span(size);
  } else {
    l.size = UINT64_MAX;  // not stored: the dataset's extent decides
  }
}

void parse_chunked_v4(const Context& ctx, io::Cursor& c, Layout& l) {
  l.flags = c.u8();
  unsigned ndims = c.u8();
  unsigned enc = c.u8();
  if (enc < 1 || enc > 8) c.fail("bad chunk dimension encoding size");
  if (ndims > limits::kMaxRank + 1) c.fail("bad chunk dimensionality");
  std::vector<uint64_t> dims;
  for (unsigned i = 0; i < ndims; ++i) dims.push_back(c.uint_le(enc));
  set_chunk_dims(c, l, dims);
  unsigned index = c.u8();
  switch (index) {
    case 1:
      l.index = Layout::Index::kSingleChunk;
      if (l.flags & 0x02) {
        l.single_filtered_size = ctx.read_length(c);
        l.single_filter_mask = c.u32();
      }
      break;
    case 2:
      l.index = Layout::Index::kImplicit;
      break;
    case 3:
      l.index = Layout::Index::kFixedArray;
      l.page_bits = c.u8();
      break;
    case 4:
      l.index = Layout::Index::kExtensibleArray;
      l.ea_max_bits = c.u8();
      l.ea_index_elements = c.u8();
      l.ea_min_pointers = c.u8();
      l.ea_min_elements = c.u8();
      l.page_bits = c.u8();
      break;
    case 5:
      l.index = Layout::Index::kBTreeV2;
      c.skip(4 + 1 + 1);  // node size, split and merge percent: the B-tree header repeats them
      break;
    default:
      c.fail("bad chunk index type " + std::to_string(index));
  }
  l.address = ctx.read_offset(c);
}

}  // namespace

Layout parse_layout(const Context& ctx, io::Cursor c) {
  Layout l;
  l.version = c.u8();
  if (l.version == 1 || l.version == 2) {
    parse_v1_v2(ctx, c, l);
    return l;
  }
  if (l.version < 3 || l.version > 5) c.fail("unsupported layout version " + std::to_string(l.version));
  unsigned cls = c.u8();
  switch (cls) {
    case 0: {
      l.cls = Layout::Class::kCompact;
      uint16_t size = c.u16();
      l.compact_offset = c.file_offset();
      l.compact_data = c.take_span(size);
      break;
    }
    case 1:
      l.cls = Layout::Class::kContiguous;
      l.address = ctx.read_offset(c);
      l.size = ctx.read_length(c);
      break;
    case 2:
      l.cls = Layout::Class::kChunked;
      if (l.version == 3) {
        unsigned ndims = c.u8();
        l.address = ctx.read_offset(c);
        std::vector<uint64_t> dims;
        for (unsigned i = 0; i < ndims; ++i) dims.push_back(c.u32());
        set_chunk_dims(c, l, dims);
      } else {
        parse_chunked_v4(ctx, c, l);  // version 5 (HDF5 2.0) has the same fields
      }
      break;
    case 3:
      l.cls = Layout::Class::kVirtual;
      break;
    default:
      c.fail("bad layout class " + std::to_string(cls));
  }
  return l;
}

}  // namespace weightio::hdf5
