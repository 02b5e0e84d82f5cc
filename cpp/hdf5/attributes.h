// The attributes of an object: attribute messages in its header (compact storage) and in
// dense storage (fractal heap + v2 B-tree name index, via the Attribute Info message).
#pragma once
#include <string>
#include <vector>

#include "hdf5/messages/attribute.h"
#include "hdf5/object_header.h"

namespace weightio::hdf5 {

// In h5py's order: creation order when the object tracks it, else by name.
std::vector<AttributeMessage> read_attributes(const Context& ctx, const ObjectHeader& header);

}  // namespace weightio::hdf5
