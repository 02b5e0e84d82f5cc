// Deflate filter (id 1): a zlib stream (RFC 1950).
#include <zlib.h>

#include <algorithm>
#include <limits>

#include "hdf5/filters/filters.h"
#include "io/errors.h"

namespace weightio::hdf5::filters {

std::vector<uint8_t> inflate(io::ByteSpan in, size_t max_out) {
  // One spare byte of output tells an overlong (bomb) stream from an exact fit.
  std::vector<uint8_t> out(max_out + 1);
  z_stream s{};
  if (inflateInit(&s) != Z_OK) throw Error("zlib initialisation failed");
  const size_t step = std::numeric_limits<uInt>::max();
  size_t in_pos = 0, out_pos = 0;
  int rc = Z_OK;
  while (true) {
    if (s.avail_in == 0 && in_pos < in.size()) {
      size_t n = std::min(step, in.size() - in_pos);
      s.next_in = const_cast<Bytef*>(in.data() + in_pos);
      s.avail_in = static_cast<uInt>(n);
      in_pos += n;
    }
    if (s.avail_out == 0 && out_pos < out.size()) {
      size_t n = std::min(step, out.size() - out_pos);
      s.next_out = out.data() + out_pos;
      s.avail_out = static_cast<uInt>(n);
      out_pos += n;
    }
    rc = ::inflate(&s, Z_NO_FLUSH);
    if (rc == Z_STREAM_END) break;
    if (rc != Z_OK) break;  // includes Z_BUF_ERROR: no progress possible (truncated or full)
  }
  size_t produced = static_cast<size_t>(s.total_out);
  inflateEnd(&s);
  if (produced > max_out) throw FormatError("deflate stream decodes to more bytes than the chunk holds");
  if (rc != Z_STREAM_END) throw FormatError("corrupt or truncated deflate stream (zlib error " + std::to_string(rc) + ")");
  out.resize(produced);
  return out;
}

}  // namespace weightio::hdf5::filters
