#include "hdf5/btree_v1.h"

#include <set>

namespace weightio::hdf5 {

namespace {

struct Node {
  unsigned type = 0;
  unsigned level = 0;
  unsigned entries = 0;
};

// Walks a v1 B-tree depth first. `key_size` is the size of one key; `on_leaf(c, child)`
// receives a cursor positioned at the key that precedes each leaf-level child.
template <class OnLeaf>
void walk(const Context& ctx, uint64_t address, unsigned expected_type, size_t key_size, OnLeaf on_leaf) {
  std::set<uint64_t> seen;
  std::function<void(uint64_t, int)> visit = [&](uint64_t addr, int expected_level) {
    if (!seen.insert(addr).second) throw FormatError("v1 B-tree cycle", ctx.absolute(addr, "B-tree node"));
    io::Cursor c = ctx.at(addr, "v1 B-tree node");
    c.expect_signature("TREE", "v1 B-tree node");
    Node n;
    n.type = c.u8();
    n.level = c.u8();
    n.entries = c.u16();
    if (n.type != expected_type) c.fail("unexpected v1 B-tree node type " + std::to_string(n.type));
    if (n.level > static_cast<unsigned>(limits::kMaxBTreeDepth)) c.fail("v1 B-tree too deep");
    if (expected_level >= 0 && static_cast<int>(n.level) != expected_level) c.fail("inconsistent v1 B-tree levels");
    ctx.read_offset(c);  // left sibling
    ctx.read_offset(c);  // right sibling
    c.need(n.entries * (key_size + ctx.sizeof_offsets()) + key_size);
    for (unsigned i = 0; i < n.entries; ++i) {
      size_t key_at = c.pos();
      c.skip(key_size);
      uint64_t child = ctx.read_offset(c);
      if (n.level == 0) {
        io::Cursor key(c.span(), 0, key_at);
        on_leaf(key, child);
      } else {
        size_t resume = c.pos();
        visit(child, static_cast<int>(n.level) - 1);
        c.seek(resume);
      }
    }
  };
  visit(address, -1);
}

}  // namespace

void walk_group_btree(const Context& ctx, uint64_t address, const std::function<void(const SymbolTableEntry&)>& visit) {
  std::set<uint64_t> nodes;
  walk(ctx, address, 0, ctx.sizeof_lengths(), [&](io::Cursor&, uint64_t snod) {
    if (!nodes.insert(snod).second) throw FormatError("symbol table node listed twice", ctx.absolute(snod, "symbol table node"));
    io::Cursor c = ctx.at(snod, "symbol table node");
    c.expect_signature("SNOD", "symbol table node");
    unsigned version = c.u8();
    if (version != 1) c.fail("unsupported symbol table node version " + std::to_string(version));
    c.skip(1);
    unsigned count = c.u16();
    for (unsigned i = 0; i < count; ++i) {
      SymbolTableEntry e;
      e.name_offset = ctx.read_offset(c);
      e.object_header = ctx.read_offset(c);
      e.cache_type = c.u32();
      c.skip(4);
      io::Cursor scratch(c.take_span(16), c.file_offset());
      if (e.cache_type == 2) e.soft_link_offset = scratch.u32();
      visit(e);
    }
  });
}

void walk_chunk_btree(const Context& ctx, uint64_t address, size_t rank, const std::function<void(const ChunkRecord&)>& visit) {
  size_t key_size = 8 + 8 * (rank + 1);
  walk(ctx, address, 1, key_size, [&](io::Cursor& key, uint64_t child) {
    ChunkRecord r;
    r.size = key.u32();
    r.filter_mask = key.u32();
    for (size_t d = 0; d < rank; ++d) r.offset.push_back(key.u64());
    r.address = child;
    visit(r);
  });
}

}  // namespace weightio::hdf5
