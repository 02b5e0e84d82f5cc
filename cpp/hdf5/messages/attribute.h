// Attribute message 0x000C versions 1-3 and Attribute Info message 0x0015
// (HDF5 spec 3.0, IV.A.2.m and IV.A.2.v).
#pragma once
#include <cstdint>
#include <string>

#include "hdf5/context.h"
#include "hdf5/messages/dataspace.h"
#include "hdf5/messages/datatype.h"
#include "hdf5/messages/link.h"

namespace weightio::hdf5 {

struct AttributeMessage {
  std::string name;
  DataType type;
  Dataspace space;
  io::ByteSpan data;     // num_elements * type.size bytes
  uint64_t data_offset = 0;
};

AttributeMessage parse_attribute(const Context& ctx, io::Cursor c);
DenseStorageInfo parse_attribute_info(const Context& ctx, io::Cursor c);

}  // namespace weightio::hdf5
