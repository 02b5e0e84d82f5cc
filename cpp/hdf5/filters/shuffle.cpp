// Shuffle filter (id 2): byte k of every element is stored in plane k.
#include <cstring>

#include "hdf5/filters/filters.h"

namespace weightio::hdf5::filters {

void unshuffle(io::ByteSpan in, size_t element_size, uint8_t* out) {
  size_t n = element_size == 0 ? 0 : in.size() / element_size;
  // Hardening: with no whole element (element_size from the filter's client data can be up
  // to 2^32 - 1) the plane loop below spun element_size times doing nothing.
  if (element_size <= 1 || n == 0) {
    if (in.size() > 0) std::memcpy(out, in.data(), in.size());
    return;
  }
  const uint8_t* src = in.data();
  for (size_t b = 0; b < element_size; ++b) {
    const uint8_t* plane = src + b * n;
    uint8_t* dst = out + b;
    for (size_t i = 0; i < n; ++i) dst[i * element_size] = plane[i];
  }
  // Bytes that do not fill a whole element are stored unshuffled at the end.
  size_t tail = in.size() - n * element_size;
  if (tail) std::memcpy(out + n * element_size, src + n * element_size, tail);
}

}  // namespace weightio::hdf5::filters
