// Dataspace message 0x0001 (HDF5 spec 3.0, IV.A.2.b), versions 1 and 2.
#pragma once
#include <cstdint>
#include <vector>

#include "hdf5/context.h"

namespace weightio::hdf5 {

struct Dataspace {
  enum class Kind { kScalar, kSimple, kNull };
  Kind kind = Kind::kScalar;
  std::vector<uint64_t> dims;
  std::vector<uint64_t> maxdims;  // kUnlimited for unlimited dimensions

  static constexpr uint64_t kUnlimited = UINT64_MAX;
  // Number of elements (1 for scalar, 0 for null); overflow is a FormatError.
  uint64_t num_elements() const;
  // Hardening: true when the product of the nonzero dimensions times `element_size` is at
  // most 2^63 - 1, as numpy requires of an array's shape.
  bool fits_numpy(uint64_t element_size) const;
};

Dataspace parse_dataspace(const Context& ctx, io::Cursor c);

}  // namespace weightio::hdf5
