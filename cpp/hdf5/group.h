// Group membership (HDF5 spec 3.0, IV.A.2.c/g/r): links from a symbol table (v1 B-tree +
// local heap), from link messages in the header (compact), or from dense storage
// (fractal heap + v2 B-tree name index). Returned in h5py's iteration order.
#pragma once
#include <vector>

#include "hdf5/messages/link.h"
#include "hdf5/object_header.h"

namespace weightio::hdf5 {

// True when the header describes a group (new- or old-style).
bool is_group(const ObjectHeader& header);

// The links of a group, into `links` (cleared first): by creation order when the group
// tracks it, else by name.
void read_links(const Context& ctx, const ObjectHeader& header, std::vector<Link>& links);

}  // namespace weightio::hdf5
