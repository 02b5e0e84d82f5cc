#include "hdf5/messages/link.h"

namespace weightio::hdf5 {

Link parse_link(const Context& ctx, io::Cursor c) {
  Link l;
  unsigned version = c.u8();
  if (version != 1) c.fail("unsupported link message version " + std::to_string(version));
  uint8_t flags = c.u8();
  if (flags & 0x08) {
    unsigned t = c.u8();
    if (t != 0 && t != 1 && t != 64) throw UnsupportedFeatureError("user-defined link type " + std::to_string(t));
    l.type = static_cast<Link::Type>(t);
  }
  if (flags & 0x04) {
    l.has_creation_order = true;
    l.creation_order = c.u64();
  }
  if (flags & 0x10) c.skip(1);  // name character set
  uint64_t name_len = c.uint_le(1u << (flags & 0x03));
  if (name_len == 0) c.fail("link with an empty name");
  const uint8_t* n = c.take(name_len);
  l.name = std::string_view(reinterpret_cast<const char*>(n), static_cast<size_t>(name_len));
  switch (l.type) {
    case Link::Type::kHard:
      l.address = ctx.read_offset(c);
      break;
    case Link::Type::kSoft: {
      uint16_t len = c.u16();
      const uint8_t* p = c.take(len);
      l.target = std::string_view(reinterpret_cast<const char*>(p), len);
      break;
    }
    case Link::Type::kExternal: {
      uint16_t len = c.u16();
      io::Cursor info(c.take_span(len), c.file_offset());
      info.skip(1);  // version and flags
      l.external_file = info.cstring_view(len);
      l.target = info.cstring_view(len);
      break;
    }
  }
  return l;
}

DenseStorageInfo parse_dense_storage_info(const Context& ctx, io::Cursor c, unsigned max_index_size, const char* what) {
  DenseStorageInfo info;
  unsigned version = c.u8();
  if (version != 0) c.fail(std::string("unsupported ") + what + " version " + std::to_string(version));
  uint8_t flags = c.u8();
  info.creation_order_tracked = flags & 0x01;
  info.creation_order_indexed = flags & 0x02;
  if (flags & 0x01) c.skip(max_index_size);  // maximum creation index
  info.heap_address = ctx.read_offset(c);
  info.name_index_address = ctx.read_offset(c);
  if (flags & 0x02) info.order_index_address = ctx.read_offset(c);
  return info;
}

DenseStorageInfo parse_link_info(const Context& ctx, io::Cursor c) {
  return parse_dense_storage_info(ctx, c, 8, "link info");
}

}  // namespace weightio::hdf5
