// A raw Snappy decompressor (google/snappy format_description.txt: a varint32 uncompressed
// length, then literal and copy elements), for table blocks whose trailer type is 1. TF's
// BundleWriter never compresses its index, but the table format allows it.
#pragma once
#include <cstdint>
#include <vector>

#include "io/span.h"

namespace weightio::tfckpt {

// Decompresses `in` (whose first byte is at file offset `base`, for error messages). Refuses
// an uncompressed length above `max_output` (a hostile length must not drive an allocation)
// and any copy that reaches before the start of the output or past its declared end.
std::vector<uint8_t> snappy_uncompress(io::ByteSpan in, uint64_t base, uint64_t max_output);

}  // namespace weightio::tfckpt
