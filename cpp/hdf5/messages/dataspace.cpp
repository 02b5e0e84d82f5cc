#include "hdf5/messages/dataspace.h"

namespace weightio::hdf5 {

uint64_t Dataspace::num_elements() const {
  if (kind == Kind::kNull) return 0;
  uint64_t n = 1;
  for (uint64_t d : dims) {
    if (d != 0 && n > UINT64_MAX / d) throw FormatError("dataspace element count overflows");
    n *= d;
  }
  return n;
}

bool Dataspace::fits_numpy(uint64_t element_size) const {
  uint64_t bytes = element_size == 0 ? 1 : element_size;
  for (uint64_t d : dims) {
    if (d == 0) continue;
    if (bytes > uint64_t{INT64_MAX} / d) return false;
    bytes *= d;
  }
  return true;
}

Dataspace parse_dataspace(const Context& ctx, io::Cursor c) {
  Dataspace ds;
  unsigned version = c.u8();
  unsigned rank = c.u8();
  uint8_t flags = c.u8();
  if (version == 1) {
    c.skip(5);  // reserved
    ds.kind = rank == 0 ? Dataspace::Kind::kScalar : Dataspace::Kind::kSimple;
  } else if (version == 2) {
    uint8_t type = c.u8();
    if (type > 2) c.fail("bad dataspace type " + std::to_string(type));
    ds.kind = type == 0 ? Dataspace::Kind::kScalar : type == 1 ? Dataspace::Kind::kSimple : Dataspace::Kind::kNull;
  } else {
    c.fail("unsupported dataspace version " + std::to_string(version));
  }
  if (rank > limits::kMaxRank) c.fail("dataspace rank " + std::to_string(rank) + " exceeds 32");
  for (unsigned i = 0; i < rank; ++i) {
    ds.dims.push_back(ctx.read_length(c));
    // Hardening: numpy (and Python's ssize_t shapes) cannot represent a dimension above
    // 2^63 - 1; such an extent is corrupt (HDF5 reserves all ones for "unlimited").
    if (ds.dims.back() > uint64_t{INT64_MAX}) c.fail("dataspace dimension exceeds 2^63 - 1");
  }
  if (flags & 0x01) {
    for (unsigned i = 0; i < rank; ++i) {
      uint64_t m = c.uint_le(ctx.sizeof_lengths());
      bool all_ones = ctx.sizeof_lengths() == 8 ? m == UINT64_MAX : m == (uint64_t{1} << (8 * ctx.sizeof_lengths())) - 1;
      ds.maxdims.push_back(all_ones ? Dataspace::kUnlimited : m);
    }
  } else {
    ds.maxdims = ds.dims;
  }
  if (ds.kind == Dataspace::Kind::kNull) ds.dims.clear(), ds.maxdims.clear();
  ds.num_elements();  // validates
  return ds;
}

}  // namespace weightio::hdf5
