// TrackableObjectGraph (tensorflow/core/protobuf/trackable_object_graph.proto), the value of
// a checkpoint's `_CHECKPOINTABLE_OBJECT_GRAPH` string: the objects that own the saved
// variables and the named edges between them, node 0 being the root.
//   TrackableObject {repeated ObjectReference children = 1; repeated SerializedTensor attributes = 2;
//                    repeated SlotVariableReference slot_variables = 3;
//                    RegisteredSaver registered_saver = 4; BoolValue has_checkpoint_values = 5}
//   ObjectReference {int32 node_id = 1; string local_name = 2}
//   SerializedTensor {string name = 1; string full_name = 2; string checkpoint_key = 3;
//                     bool optional_restore = 4}
//   SlotVariableReference {int32 original_variable_node_id = 1; string slot_name = 2;
//                          int32 slot_variable_node_id = 3}
//   RegisteredSaver {string name = 1; string object_name = 2}
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "io/span.h"

namespace weightio::tfckpt {

struct ObjectReference {
  int32_t node_id = 0;
  std::string local_name;
};

struct SerializedTensor {
  std::string name, full_name, checkpoint_key;
  bool optional_restore = false;
};

struct SlotVariableReference {
  int32_t original_variable_node_id = 0;
  std::string slot_name;
  int32_t slot_variable_node_id = 0;
};

struct TrackableObject {
  std::vector<ObjectReference> children;
  std::vector<SerializedTensor> attributes;
  std::vector<SlotVariableReference> slot_variables;
  bool has_registered_saver = false;
  std::string saver_name, saver_object_name;
  int has_checkpoint_values = -1;  // -1 unset (google.protobuf.BoolValue absent), else 0 / 1
};

struct ObjectGraph {
  std::vector<TrackableObject> nodes;
};

// Decodes and validates (every node id refers to an existing node). `base` is the offset of
// bytes[0] in the data file, for error messages.
ObjectGraph parse_object_graph(io::ByteSpan bytes, uint64_t base);

}  // namespace weightio::tfckpt
