// Fletcher-32 filter (id 3): a 4-byte checksum appended to the chunk.
#include "hdf5/checksum.h"
#include "hdf5/filters/filters.h"
#include "io/errors.h"

namespace weightio::hdf5::filters {

size_t check_fletcher32(io::ByteSpan in) {
  if (in.size() < 4) throw FormatError("fletcher32 chunk shorter than its checksum");
  size_t n = in.size() - 4;
  const uint8_t* t = in.data() + n;
  uint32_t stored = uint32_t{t[0]} | uint32_t{t[1]} << 8 | uint32_t{t[2]} << 16 | uint32_t{t[3]} << 24;
  uint32_t computed = fletcher32(in.data(), n);
  // HDF5 before 1.6.3 stored the checksum with the bytes of each 16-bit half swapped.
  uint32_t legacy = ((computed & 0x00ff00ffu) << 8) | ((computed & 0xff00ff00u) >> 8);
  if (stored != computed && stored != legacy) throw ChecksumError("fletcher32 checksum mismatch in chunk");
  return n;
}

}  // namespace weightio::hdf5::filters
