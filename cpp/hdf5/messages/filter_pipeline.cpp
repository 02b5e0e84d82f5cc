#include "hdf5/messages/filter_pipeline.h"

namespace weightio::hdf5 {

FilterPipeline parse_filter_pipeline(io::Cursor c) {
  FilterPipeline p;
  unsigned version = c.u8();
  unsigned count = c.u8();
  if (version != 1 && version != 2) c.fail("unsupported filter pipeline version " + std::to_string(version));
  if (count > 32) c.fail("too many filters");
  if (version == 1) c.skip(6);
  for (unsigned i = 0; i < count; ++i) {
    Filter f;
    f.id = c.u16();
    uint16_t name_len = 0;
    if (version == 1 || f.id >= 256) name_len = c.u16();
    f.flags = c.u16();
    unsigned nvalues = c.u16();
    if (name_len > 0) {
      const uint8_t* n = c.take(name_len);
      size_t len = 0;
      while (len < name_len && n[len] != 0) ++len;
      f.name.assign(reinterpret_cast<const char*>(n), len);
      if (version == 1) c.skip((8 - name_len % 8) % 8);
    }
    for (unsigned k = 0; k < nvalues; ++k) f.client_data.push_back(c.u32());
    if (version == 1 && nvalues % 2 == 1) c.skip(4);
    p.filters.push_back(std::move(f));
  }
  return p;
}

std::string filter_name(const Filter& f) {
  switch (f.id) {
    case kFilterDeflate: return "gzip";
    case kFilterShuffle: return "shuffle";
    case kFilterFletcher32: return "fletcher32";
    case kFilterSzip: return "szip";
    case kFilterNbit: return "nbit";
    case kFilterScaleOffset: return "scaleoffset";
    case 32000: return "lzf";
    case 32001: return "blosc";
    case 32004: return "lz4";
    case 32008: return "bitshuffle";
    case 32015: return "zstd";
    default: return f.name.empty() ? "filter " + std::to_string(f.id) : f.name + " (id " + std::to_string(f.id) + ")";
  }
}

}  // namespace weightio::hdf5
