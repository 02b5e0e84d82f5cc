// Filter pipeline message 0x000B (HDF5 spec 3.0, IV.A.2.l), versions 1 and 2.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "hdf5/context.h"

namespace weightio::hdf5 {

enum FilterId : uint16_t { kFilterDeflate = 1, kFilterShuffle = 2, kFilterFletcher32 = 3, kFilterSzip = 4,
                           kFilterNbit = 5, kFilterScaleOffset = 6 };

struct Filter {
  uint16_t id = 0;
  std::string name;
  uint16_t flags = 0;  // bit 0: optional (a chunk's filter mask may say it was skipped)
  std::vector<uint32_t> client_data;
};

struct FilterPipeline {
  std::vector<Filter> filters;  // in the order they were applied when writing
};

FilterPipeline parse_filter_pipeline(io::Cursor c);
// The registered name of a filter id, for users and errors ("deflate", "lzf", ...).
std::string filter_name(const Filter& f);

}  // namespace weightio::hdf5
