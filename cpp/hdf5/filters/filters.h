// The filters of the HDF5 filter pipeline this reader decodes (HDF5 spec 3.0, IV.A.2.l):
// deflate (1), shuffle (2) and fletcher32 (3). Each decoder reads `in` and writes into
// `out`, whose size it may not exceed (this is what bounds decompression bombs).
#pragma once
#include <cstdint>
#include <vector>

#include "hdf5/messages/filter_pipeline.h"
#include "io/span.h"

namespace weightio::hdf5::filters {

// Inflates a zlib stream; fails unless it decodes to at most `max_out` bytes.
std::vector<uint8_t> inflate(io::ByteSpan in, size_t max_out);
// Reverses the byte shuffle of elements of `element_size` bytes, in place into `out`.
void unshuffle(io::ByteSpan in, size_t element_size, uint8_t* out);
// Verifies and strips the trailing Fletcher-32 checksum; returns the payload length.
size_t check_fletcher32(io::ByteSpan in);

// Runs the pipeline backwards over one stored chunk. `filter_mask` bit i set means
// filter i was skipped when the chunk was written. The result must be `expected` bytes.
std::vector<uint8_t> decode_chunk(const FilterPipeline& pipeline, uint32_t filter_mask, io::ByteSpan stored,
                                  size_t expected, size_t element_size);

}  // namespace weightio::hdf5::filters
