// Runs a filter pipeline backwards over one chunk.
#include "hdf5/filters/filters.h"
#include "io/errors.h"

namespace weightio::hdf5::filters {

std::vector<uint8_t> decode_chunk(const FilterPipeline& pipeline, uint32_t filter_mask, io::ByteSpan stored,
                                  size_t expected, size_t element_size) {
  std::vector<uint8_t> buf(stored.data(), stored.data() + stored.size());
  // Intermediate results may carry a checksum or other small overhead beyond `expected`.
  const size_t cap = expected + 64;
  for (size_t i = pipeline.filters.size(); i-- > 0;) {
    if (filter_mask & (1u << i)) continue;
    const Filter& f = pipeline.filters[i];
    io::ByteSpan cur(buf.data(), buf.size());
    switch (f.id) {
      case kFilterDeflate:
        buf = inflate(cur, cap);
        break;
      case kFilterShuffle: {
        size_t es = f.client_data.empty() ? element_size : f.client_data[0];
        std::vector<uint8_t> out(buf.size());
        unshuffle(cur, es == 0 ? 1 : es, out.data());
        buf.swap(out);
        break;
      }
      case kFilterFletcher32:
        buf.resize(check_fletcher32(cur));
        break;
      default:
        throw UnsupportedFeatureError("filter '" + filter_name(f) + "' is not supported by the native reader");
    }
  }
  if (buf.size() != expected)
    throw FormatError("chunk decodes to " + std::to_string(buf.size()) + " bytes, expected " + std::to_string(expected));
  return buf;
}

}  // namespace weightio::hdf5::filters
