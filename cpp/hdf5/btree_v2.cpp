#include "hdf5/btree_v2.h"

namespace weightio::hdf5 {

namespace {
constexpr unsigned kNodePrefix = 4 + 1 + 1 + 4;  // signature, version, type, checksum

// Bytes needed to store values up to `v` (the format's "limit encoding size").
// Fix: this is HDF5's H5VM_limit_enc_size, floor(log2(v)) / 8 + 1. The previous
// bit-length / 8 + 1 was one byte too wide when the bit length is a multiple of 8 (e.g.
// v = 128..255), misreading internal nodes; and `v >> 64` was undefined for v >= 2^63.
unsigned encoded_size(uint64_t v) {
  unsigned log2 = 0;
  while (v >>= 1) ++log2;
  return log2 / 8 + 1;
}
}  // namespace

BTreeV2::BTreeV2(const Context& ctx, uint64_t address) : ctx_(ctx) {
  io::Cursor c = ctx.at(address, "v2 B-tree header");
  size_t start = c.pos();
  c.expect_signature("BTHD", "v2 B-tree header");
  unsigned version = c.u8();
  if (version != 0) c.fail("unsupported v2 B-tree version " + std::to_string(version));
  type_ = c.u8();
  node_size_ = c.u32();
  record_size_ = c.u16();
  depth_ = c.u16();
  c.skip(2);  // split and merge percent
  root_ = ctx.read_offset(c);
  root_records_ = c.u16();
  total_records_ = ctx.read_length(c);
  verify_checksum_at(c, start, "v2 B-tree header");
  if (record_size_ == 0 || node_size_ <= kNodePrefix || node_size_ > (1u << 24))
    throw FormatError("bad v2 B-tree node or record size", ctx.absolute(address, "v2 B-tree"));
  if (depth_ > static_cast<unsigned>(limits::kMaxBTreeDepth)) throw FormatError("v2 B-tree too deep", ctx.absolute(address, "v2 B-tree"));
  // Node capacities, as the format derives them from the node and record sizes.
  max_records_.push_back((node_size_ - kNodePrefix) / record_size_);
  cum_max_records_.push_back(max_records_[0]);
  cum_records_size_.push_back(0);
  max_records_size_ = encoded_size(max_records_[0]);
  for (unsigned d = 1; d <= depth_; ++d) {
    uint64_t pointer = ctx.sizeof_offsets() + max_records_size_ + cum_records_size_[d - 1];
    uint64_t avail = node_size_ - kNodePrefix;
    if (avail < pointer) throw FormatError("v2 B-tree node too small", ctx.absolute(address, "v2 B-tree"));
    uint64_t n = (avail - pointer) / (record_size_ + pointer);
    max_records_.push_back(n);
    uint64_t cum = (n + 1) * cum_max_records_[d - 1] + n;
    if (cum_max_records_[d - 1] != 0 && (n + 1) > UINT64_MAX / cum_max_records_[d - 1]) cum = UINT64_MAX;
    cum_max_records_.push_back(cum);
    cum_records_size_.push_back(encoded_size(cum));
  }
}

void BTreeV2::for_each(const std::function<void(io::Cursor&)>& visit) const {
  if (root_ == io::kUndefinedAddress || total_records_ == 0) return;
  size_t visited = 0;
  std::set<uint64_t> seen;
  visit_node(root_, depth_, root_records_, visit, visited, seen);
}

void BTreeV2::visit_node(uint64_t address, unsigned depth, uint64_t nrec, const std::function<void(io::Cursor&)>& visit,
                         size_t& visited, std::set<uint64_t>& seen) const {
  // Every node is visited at most once per record in the tree: this bounds work on cycles.
  if (++visited > 2 * total_records_ + 2) throw FormatError("v2 B-tree has more nodes than its records allow", ctx_.absolute(address, "v2 B-tree node"));
  // Hardening: the bound above trusts total_records_, which the file sets; an internal node
  // that lists the same child many times (at every level) made the walk exponential. A
  // node belongs to exactly one parent, so a second visit is corruption.
  if (!seen.insert(address).second) throw FormatError("v2 B-tree node referenced twice", ctx_.absolute(address, "v2 B-tree node"));
  if (nrec > max_records_[depth]) throw FormatError("v2 B-tree node holds too many records", ctx_.absolute(address, "v2 B-tree node"));
  io::Cursor c = ctx_.block(address, node_size_, "v2 B-tree node");
  c.expect_signature(depth == 0 ? "BTLF" : "BTIN", "v2 B-tree node");
  unsigned version = c.u8();
  if (version != 0) c.fail("unsupported v2 B-tree node version");
  if (c.u8() != type_) c.fail("v2 B-tree node type differs from its header");
  size_t records_at = c.pos();
  c.skip(nrec * record_size_);
  if (depth == 0) {
    verify_checksum_at(c, 0, "v2 B-tree leaf node");
    for (uint64_t i = 0; i < nrec; ++i) {
      io::Cursor r(io::ByteSpan(c.span().data() + records_at + i * record_size_, record_size_),
                   c.file_offset() - 4 - (nrec - i) * record_size_);
      visit(r);
    }
    return;
  }
  struct Child {
    uint64_t address, nrec;
  };
  std::vector<Child> children;
  for (uint64_t i = 0; i <= nrec; ++i) {
    Child ch;
    ch.address = ctx_.read_offset(c);
    ch.nrec = c.uint_le(max_records_size_);
    if (depth > 1) c.uint_le(cum_records_size_[depth - 1]);
    children.push_back(ch);
  }
  verify_checksum_at(c, 0, "v2 B-tree internal node");
  for (uint64_t i = 0; i <= nrec; ++i) {
    visit_node(children[i].address, depth - 1, children[i].nrec, visit, visited, seen);
    if (i < nrec) {
      io::Cursor r(io::ByteSpan(c.span().data() + records_at + i * record_size_, record_size_), 0);
      visit(r);
    }
  }
}

}  // namespace weightio::hdf5
