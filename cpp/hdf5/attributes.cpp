#include "hdf5/attributes.h"

#include <algorithm>

#include "hdf5/btree_v2.h"
#include "hdf5/fractal_heap.h"

namespace weightio::hdf5 {

std::vector<AttributeMessage> read_attributes(const Context& ctx, const ObjectHeader& header) {
  std::vector<std::pair<uint64_t, AttributeMessage>> found;  // (creation order, attribute)
  // Hardening: many dense-storage records may name one big heap object; see LocalBudget.
  LocalBudget budget(ctx);
  auto charge = [&](const AttributeMessage& a) { budget.take(sizeof(AttributeMessage) + a.name.size() + a.data.size(), "attributes"); };
  for (const RawMessage& m : header.messages) {
    if (m.type != kMsgAttribute) continue;
    if (m.flags & kMsgFlagShared) throw UnsupportedFeatureError("shared attribute message");
    found.emplace_back(m.creation_order, parse_attribute(ctx, io::Cursor(m.data, m.offset)));
    charge(found.back().second);
  }
  if (const RawMessage* ai = header.find(kMsgAttributeInfo)) {
    DenseStorageInfo info = parse_attribute_info(ctx, io::Cursor(ai->data, ai->offset));
    if (info.dense() && info.name_index_address != io::kUndefinedAddress) {
      FractalHeap heap(ctx, info.heap_address);
      BTreeV2 index(ctx, info.name_index_address);
      if (index.type() != 8) throw FormatError("attribute name index has unexpected B-tree type " + std::to_string(index.type()));
      index.for_each([&](io::Cursor& r) {
        io::ByteSpan id = r.take_span(8);
        uint8_t flags = r.u8();
        uint32_t order = r.u32();
        if (flags & kMsgFlagShared) throw UnsupportedFeatureError("shared attribute message in dense storage");
        io::ByteSpan msg = heap.object(id);
        found.emplace_back(order, parse_attribute(ctx, io::Cursor(msg, 0)));
        charge(found.back().second);
      });
    }
  }
  if (header.attr_creation_order_tracked) {
    std::stable_sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  } else {
    std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.second.name < b.second.name; });
  }
  std::vector<AttributeMessage> out;
  out.reserve(found.size());
  for (auto& f : found) out.push_back(std::move(f.second));
  return out;
}

}  // namespace weightio::hdf5
