#include "tfckpt/object_graph.h"

#include "io/errors.h"
#include "tfckpt/wire.h"

namespace weightio::tfckpt {

namespace {

int32_t as_int32(uint64_t v) { return static_cast<int32_t>(static_cast<uint32_t>(v)); }

// Each decoded item costs ~50-100 bytes from as little as 2 input bytes: cap the count so a
// hostile graph cannot turn a large string into gigabytes. Real graphs have thousands.
constexpr size_t kMaxItems = size_t{1} << 22;

struct Budget {
  size_t left = kMaxItems;
  void take(const WireReader& r) {
    if (left == 0) throw FormatError("object graph has more than " + std::to_string(kMaxItems) + " items", r.tag_offset());
    --left;
  }
};

ObjectReference parse_reference(WireReader r) {
  ObjectReference o;
  while (r.next()) {
    if (r.field() == 1 && r.is(WireType::kVarint)) o.node_id = as_int32(r.varint());
    else if (r.field() == 2 && r.is(WireType::kLengthDelimited)) o.local_name = r.string();
    else r.skip();
  }
  return o;
}

SerializedTensor parse_tensor(WireReader r) {
  SerializedTensor t;
  while (r.next()) {
    if (r.field() == 1 && r.is(WireType::kLengthDelimited)) t.name = r.string();
    else if (r.field() == 2 && r.is(WireType::kLengthDelimited)) t.full_name = r.string();
    else if (r.field() == 3 && r.is(WireType::kLengthDelimited)) t.checkpoint_key = r.string();
    else if (r.field() == 4 && r.is(WireType::kVarint)) t.optional_restore = r.varint() != 0;
    else r.skip();
  }
  return t;
}

SlotVariableReference parse_slot(WireReader r) {
  SlotVariableReference s;
  while (r.next()) {
    if (r.field() == 1 && r.is(WireType::kVarint)) s.original_variable_node_id = as_int32(r.varint());
    else if (r.field() == 2 && r.is(WireType::kLengthDelimited)) s.slot_name = r.string();
    else if (r.field() == 3 && r.is(WireType::kVarint)) s.slot_variable_node_id = as_int32(r.varint());
    else r.skip();
  }
  return s;
}

TrackableObject parse_object(WireReader r, Budget& budget) {
  TrackableObject o;
  while (r.next()) {
    const bool msg = r.is(WireType::kLengthDelimited);
    if (msg && r.field() <= 3) budget.take(r);
    if (r.field() == 1 && msg) {
      o.children.push_back(parse_reference(r.message()));
    } else if (r.field() == 2 && msg) {
      o.attributes.push_back(parse_tensor(r.message()));
    } else if (r.field() == 3 && msg) {
      o.slot_variables.push_back(parse_slot(r.message()));
    } else if (r.field() == 4 && msg) {
      o.has_registered_saver = true;
      WireReader s = r.message();
      while (s.next()) {
        if (s.field() == 1 && s.is(WireType::kLengthDelimited)) o.saver_name = s.string();
        else if (s.field() == 2 && s.is(WireType::kLengthDelimited)) o.saver_object_name = s.string();
        else s.skip();
      }
    } else if (r.field() == 5 && msg) {
      WireReader b = r.message();  // google.protobuf.BoolValue {bool value = 1}
      o.has_checkpoint_values = 0;
      while (b.next()) {
        if (b.field() == 1 && b.is(WireType::kVarint)) o.has_checkpoint_values = b.varint() != 0 ? 1 : 0;
        else b.skip();
      }
    } else {
      r.skip();
    }
  }
  return o;
}

}  // namespace

ObjectGraph parse_object_graph(io::ByteSpan bytes, uint64_t base) {
  ObjectGraph g;
  WireReader r(bytes, base);
  std::vector<uint64_t> node_offsets;
  Budget budget;
  while (r.next()) {
    if (r.field() == 1 && r.is(WireType::kLengthDelimited)) {
      budget.take(r);
      node_offsets.push_back(r.tag_offset());
      g.nodes.push_back(parse_object(r.message(), budget));
    } else {
      r.skip();
    }
  }
  const auto n = static_cast<int64_t>(g.nodes.size());
  auto check = [&](int32_t id, size_t node, const char* what) {
    if (id < 0 || id >= n)
      throw FormatError(std::string("object graph node ") + std::to_string(node) + " has a " + what + " node id " +
                            std::to_string(id) + " outside [0, " + std::to_string(n) + ")",
                        node_offsets[node]);
  };
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    for (const auto& c : g.nodes[i].children) check(c.node_id, i, "child");
    for (const auto& s : g.nodes[i].slot_variables) {
      check(s.original_variable_node_id, i, "slot's original variable");
      check(s.slot_variable_node_id, i, "slot variable");
    }
  }
  return g;
}

}  // namespace weightio::tfckpt
