#include "hdf5/context.h"

#include <cstdio>

#include "hdf5/checksum.h"

namespace weightio::hdf5 {

void verify_checksum(io::ByteSpan covered, uint32_t stored, const char* what, uint64_t offset) {
  uint32_t computed = lookup3(covered.data(), covered.size());
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
  // Fuzz builds only (cpp/fuzz, CMake WEIGHTIO_FUZZ): accept any stored checksum so that
  // mutated metadata reaches the parsers behind it instead of stopping here.
  computed = stored;
#endif
  if (computed != stored) {
    char buf[64];
    std::snprintf(buf, sizeof buf, " (stored 0x%08x, computed 0x%08x)", stored, computed);
    throw ChecksumError(std::string("checksum mismatch in ") + what + buf, offset);
  }
}

void verify_checksum_at(io::Cursor& c, size_t start, const char* what) {
  size_t end = c.pos();
  uint64_t abs_start = c.file_offset() - (end - start);
  uint32_t stored = c.u32();
  verify_checksum(io::ByteSpan(c.span().data() + start, end - start), stored, what, abs_start);
}

}  // namespace weightio::hdf5
