#include "hdf5/messages/fill_value.h"

namespace weightio::hdf5 {

namespace {
void read_value(io::Cursor& c, FillValue& f) {
  uint32_t size = c.u32();
  const uint8_t* p = c.take(size);
  f.value.assign(p, p + size);
  f.defined = size > 0;
}
}  // namespace

FillValue parse_fill_value(io::Cursor c) {
  FillValue f;
  unsigned version = c.u8();
  if (version == 1 || version == 2) {
    c.skip(2);  // space allocation time, fill value write time
    bool defined = c.u8() != 0;
    if (version == 1 || defined) {
      if (c.remaining() >= 4) read_value(c, f);
    }
  } else if (version == 3) {
    uint8_t flags = c.u8();
    if (flags & 0x20) read_value(c, f);
  } else {
    c.fail("unsupported fill value message version " + std::to_string(version));
  }
  return f;
}

FillValue parse_fill_value_old(io::Cursor c) {
  FillValue f;
  read_value(c, f);
  return f;
}

}  // namespace weightio::hdf5
