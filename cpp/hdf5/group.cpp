#include "hdf5/group.h"

#include <algorithm>

#include "hdf5/btree_v1.h"
#include "hdf5/btree_v2.h"
#include "hdf5/fractal_heap.h"
#include "hdf5/local_heap.h"

namespace weightio::hdf5 {

namespace {

// Hardening: link lists are cached for the life of the file, and many entries may name the
// same heap string (or groups share one symbol table); see Context::charge.
void charge(const Context& ctx, const Link& l) {
  ctx.charge(sizeof(Link) + 64 + 2 * l.name.size() + l.target.size() + l.external_file.size(), "links");
}

void read_symbol_table(const Context& ctx, const RawMessage& m, std::vector<Link>& links) {
  io::Cursor c(m.data, m.offset);
  uint64_t btree = ctx.read_offset(c);
  uint64_t heap_address = ctx.read_offset(c);
  LocalHeap heap(ctx, heap_address);
  walk_group_btree(ctx, btree, [&](const SymbolTableEntry& e) {
    Link l;
    l.name = heap.view_at(e.name_offset);
    if (e.cache_type == 2) {
      l.type = Link::Type::kSoft;
      l.target = heap.view_at(e.soft_link_offset);
    } else {
      l.address = e.object_header;
    }
    charge(ctx, l);
    links.push_back(l);
  });
}

void read_dense_links(const Context& ctx, const DenseStorageInfo& info, std::vector<Link>& links) {
  if (info.name_index_address == io::kUndefinedAddress) return;
  FractalHeap heap(ctx, info.heap_address);
  BTreeV2 index(ctx, info.name_index_address);
  if (index.type() != 5) throw FormatError("link name index has unexpected B-tree type " + std::to_string(index.type()));
  index.for_each([&](io::Cursor& r) {
    r.skip(4);  // name hash
    io::ByteSpan id = r.take_span(r.remaining());
    io::ByteSpan msg = heap.object(id);
    links.push_back(parse_link(ctx, io::Cursor(msg, 0)));
    charge(ctx, links.back());
  });
}

}  // namespace

bool is_group(const ObjectHeader& header) {
  return header.find(kMsgSymbolTable) || header.find(kMsgLinkInfo) || header.find(kMsgGroupInfo) ||
         header.find(kMsgLink);
}

void read_links(const Context& ctx, const ObjectHeader& header, std::vector<Link>& links) {
  links.clear();
  bool by_order = false;
  if (const RawMessage* st = header.find(kMsgSymbolTable)) {
    read_symbol_table(ctx, *st, links);
  } else {
    DenseStorageInfo info;
    if (const RawMessage* li = header.find(kMsgLinkInfo)) info = parse_link_info(ctx, io::Cursor(li->data, li->offset));
    by_order = info.creation_order_tracked;
    if (info.dense()) {
      read_dense_links(ctx, info, links);
    } else {
      for (const RawMessage& m : header.messages)
        if (m.type == kMsgLink) {
          links.push_back(parse_link(ctx, io::Cursor(m.data, m.offset)));
          charge(ctx, links.back());
        }
    }
  }
  if (by_order) {
    std::stable_sort(links.begin(), links.end(),
                     [](const Link& a, const Link& b) { return a.creation_order < b.creation_order; });
  } else {
    std::sort(links.begin(), links.end(), [](const Link& a, const Link& b) { return a.name < b.name; });
  }
  for (size_t i = 1; i < links.size(); ++i)
    if (links[i].name == links[i - 1].name && !by_order)
      throw FormatError("group has two links named '" + std::string(links[i].name) + "'", header.address);
}

}  // namespace weightio::hdf5
