// Deflate filter (id 1): a zlib stream (RFC 1950).
#include <zlib.h>

#include <algorithm>
#include <limits>

#include "hdf5/filters/filters.h"
#include "io/errors.h"

namespace weightio::hdf5::filters {

std::vector<uint8_t> inflate(io::ByteSpan in, size_t max_out) {
  // One spare byte of output tells an overlong (bomb) stream from an exact fit.
  // Hardening: the buffer grows with what the stream really produces (deflate expands at
  // most ~1032x) instead of allocating max_out + 1 up front: max_out comes from the chunk
  // dimensions in the file (up to 4 GiB), so a 10-byte chunk could demand 4 GiB.
  const size_t limit = max_out + 1;
  std::vector<uint8_t> out(std::min(limit, std::max<size_t>(size_t{1} << 16, 4 * in.size())));
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
    if (s.avail_out == 0 && out_pos == out.size() && out.size() < limit) {
      out.resize(out.size() > limit / 2 ? limit : 2 * out.size());  // grow geometrically
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
