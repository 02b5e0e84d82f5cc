// Fill value messages: old 0x0004 and new 0x0005 versions 1-3 (HDF5 spec 3.0, IV.A.2.e/f).
#pragma once
#include <cstdint>
#include <vector>

#include "hdf5/context.h"

namespace weightio::hdf5 {

struct FillValue {
  bool defined = false;          // a value is stored; otherwise the fill is all zero bytes
  std::vector<uint8_t> value;    // element bytes as stored in the file
};

FillValue parse_fill_value(io::Cursor c);
FillValue parse_fill_value_old(io::Cursor c);

}  // namespace weightio::hdf5
