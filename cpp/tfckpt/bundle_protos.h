// The protos of a tensor bundle's index (tensorflow/core/protobuf/tensor_bundle.proto and the
// framework protos it uses), decoded by hand from the protobuf wire format:
//   BundleHeaderProto {int32 num_shards = 1; Endianness endianness = 2; VersionDef version = 3}
//   VersionDef        {int32 producer = 1; int32 min_consumer = 2; repeated int32 bad_consumers = 3}
//   BundleEntryProto  {DataType dtype = 1; TensorShapeProto shape = 2; int32 shard_id = 3;
//                      int64 offset = 4; int64 size = 5; fixed32 crc32c = 6;
//                      repeated TensorSliceProto slices = 7}
//   TensorShapeProto  {repeated Dim dim = 2 {int64 size = 1; string name = 2}; bool unknown_rank = 3}
//   TensorSliceProto  {repeated Extent extent = 1 {int64 start = 1; oneof {int64 length = 2}}}
// Proto3 rules: unknown fields are skipped, a repeated scalar may be packed, a scalar seen
// twice keeps the last value, a message seen twice is merged.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "io/span.h"

namespace weightio::tfckpt {

struct VersionDef {
  int32_t producer = 0;
  int32_t min_consumer = 0;
  std::vector<int32_t> bad_consumers;
};

struct BundleHeader {
  int32_t num_shards = 0;
  int32_t endianness = 0;  // 0 LITTLE, 1 BIG
  VersionDef version;
};

struct TensorShape {
  std::vector<int64_t> dims;
  bool unknown_rank = false;
};

struct SliceExtent {
  int64_t start = 0;
  int64_t length = -1;  // -1: absent, the whole dimension (TensorSlice's kFullExtent)
  bool has_length = false;
};

struct TensorSliceSpec {
  std::vector<SliceExtent> extents;
};

struct BundleEntry {
  int32_t dtype = 0;
  TensorShape shape;
  int32_t shard_id = 0;
  int64_t offset = 0;
  int64_t size = 0;
  uint32_t crc32c = 0;  // masked
  std::vector<TensorSliceSpec> slices;
};

// `base` is the file offset of bytes[0], for error messages.
BundleHeader parse_bundle_header(io::ByteSpan bytes, uint64_t base);
BundleEntry parse_bundle_entry(io::ByteSpan bytes, uint64_t base);

}  // namespace weightio::tfckpt
