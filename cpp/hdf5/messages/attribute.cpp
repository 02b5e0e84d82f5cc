#include "hdf5/messages/attribute.h"

namespace weightio::hdf5 {

namespace {
size_t padded8(size_t n) { return (n + 7) & ~size_t{7}; }
}  // namespace

AttributeMessage parse_attribute(const Context& ctx, io::Cursor c) {
  AttributeMessage a;
  unsigned version = c.u8();
  if (version < 1 || version > 3) c.fail("unsupported attribute message version " + std::to_string(version));
  uint8_t flags = c.u8();
  if (flags & ~0x03) c.fail("bad attribute message flags");
  uint16_t name_size = c.u16();
  uint16_t type_size = c.u16();
  uint16_t space_size = c.u16();
  if (version == 3) c.skip(1);  // name character set
  bool pad = version == 1;
  {
    io::ByteSpan name = c.take_span(name_size);
    size_t n = 0;
    while (n < name.size() && name[n] != 0) ++n;
    a.name.assign(reinterpret_cast<const char*>(name.data()), n);
    if (pad) c.skip(padded8(name_size) - name_size);
  }
  uint64_t type_at = c.file_offset();
  a.type = parse_datatype(ctx, io::Cursor(c.take_span(type_size), type_at), flags & 0x01);
  if (pad) c.skip(padded8(type_size) - type_size);
  if (flags & 0x02) throw UnsupportedFeatureError("shared dataspace in attribute '" + a.name + "'");
  uint64_t space_at = c.file_offset();
  a.space = parse_dataspace(ctx, io::Cursor(c.take_span(space_size), space_at));
  if (pad) c.skip(padded8(space_size) - space_size);
  uint64_t n = a.space.num_elements();
  // Hardening: as for datasets, an extent numpy cannot represent (e.g. (2^62, 0)).
  if (!a.space.fits_numpy(a.type.size)) c.fail("attribute '" + a.name + "' is larger than 2^63 bytes");
  if (a.type.size != 0 && n > c.remaining() / a.type.size) c.fail("attribute '" + a.name + "' data runs past its message");
  a.data_offset = c.file_offset();
  a.data = c.take_span(n * a.type.size);
  return a;
}

DenseStorageInfo parse_attribute_info(const Context& ctx, io::Cursor c) {
  return parse_dense_storage_info(ctx, c, 2, "attribute info");
}

}  // namespace weightio::hdf5
