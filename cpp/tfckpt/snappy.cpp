#include "tfckpt/snappy.h"

#include <string>

#include "io/cursor.h"
#include "io/errors.h"
#include "tfckpt/wire.h"

namespace weightio::tfckpt {

std::vector<uint8_t> snappy_uncompress(io::ByteSpan in, uint64_t base, uint64_t max_output) {
  io::Cursor c(in, base);
  const uint32_t length = read_varint32(c);
  if (length > max_output)
    c.fail("snappy block declares " + std::to_string(length) + " uncompressed bytes, more than the cap of " +
           std::to_string(max_output));
  std::vector<uint8_t> out;
  out.reserve(length);
  while (c.remaining() > 0) {
    const uint64_t at = c.file_offset();
    const uint8_t tag = c.u8();
    uint64_t len = 0, offset = 0;
    switch (tag & 3) {
      case 0: {  // literal: length-1 in the tag's upper 6 bits, or in the next 1..4 bytes
        len = tag >> 2;
        if (len >= 60) len = c.uint_le(static_cast<unsigned>(len - 59));
        len += 1;
        if (len > length - out.size()) throw FormatError("snappy literal runs past the declared length", at);
        const uint8_t* p = c.take(len);
        out.insert(out.end(), p, p + len);
        continue;
      }
      case 1:  // copy with a 1-byte offset: 4..11 bytes, 11-bit offset
        len = 4 + ((tag >> 2) & 7);
        offset = (static_cast<uint64_t>(tag >> 5) << 8) | c.u8();
        break;
      case 2:  // copy with a 2-byte offset
        len = 1 + (tag >> 2);
        offset = c.u16();
        break;
      default:  // copy with a 4-byte offset
        len = 1 + (tag >> 2);
        offset = c.u32();
        break;
    }
    if (offset == 0 || offset > out.size()) throw FormatError("snappy copy offset out of range", at);
    if (len > length - out.size()) throw FormatError("snappy copy runs past the declared length", at);
    // Byte by byte: a copy may overlap its own output (offset < len repeats a pattern).
    size_t from = out.size() - static_cast<size_t>(offset);
    for (uint64_t i = 0; i < len; ++i) out.push_back(out[from + i]);
  }
  if (out.size() != length)
    throw FormatError("snappy block decompresses to " + std::to_string(out.size()) + " bytes, declared " +
                          std::to_string(length),
                      base);
  return out;
}

}  // namespace weightio::tfckpt
