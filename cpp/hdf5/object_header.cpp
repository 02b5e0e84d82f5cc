#include "hdf5/object_header.h"

#include <set>
#include <utility>

namespace weightio::hdf5 {

namespace {

// Types this reader knows (it may ignore some of them, but they are not "unknown").
bool is_known_type(uint16_t type) { return type <= kMsgFileSpaceInfo; }

class HeaderReader {
 public:
  HeaderReader(const Context& ctx, std::vector<RawMessage>& out) : ctx_(ctx), out_(out) {}

  void add(RawMessage m) {
    // Hardening: continuation messages count too (they are not kept), else a block full of
    // them could queue millions of pending continuations.
    if (++count_ > limits::kMaxHeaderMessages) throw FormatError("object header has too many messages", m.offset);
    if (!is_known_type(m.type) && (m.flags & kMsgFlagFailIfUnknown))
      throw UnsupportedFeatureError("object header message type " + std::to_string(m.type) +
                                    " is marked 'fail if unknown'");
    if (m.type == kMsgContinuation) {
      io::Cursor c(m.data, m.offset);
      uint64_t addr = ctx_.read_offset(c);
      uint64_t len = ctx_.read_length(c);
      pending_.emplace_back(addr, len);
      return;
    }
    out_.push_back(m);
  }

  // Follows continuation blocks until none are left; `parse_block` parses one.
  template <class F>
  void drain(F parse_block) {
    // Hardening: a queue read from the front by index (erasing the front of a vector was
    // quadratic); a vector rather than a deque, which allocates even when left empty.
    for (size_t next = 0; next < pending_.size(); ++next) {
      auto [addr, len] = pending_[next];
      if (!seen_.insert(addr).second) throw FormatError("object header continuation cycle", ctx_.absolute(addr, "continuation"));
      if (seen_.size() > limits::kMaxContinuationBlocks) throw FormatError("object header has too many continuation blocks");
      parse_block(ctx_.block(addr, len, "object header continuation block"));
    }
  }

 private:
  const Context& ctx_;
  std::vector<RawMessage>& out_;
  size_t count_ = 0;
  std::vector<std::pair<uint64_t, uint64_t>> pending_;
  std::set<uint64_t> seen_;
};

// Version 1 messages: type(2) size(2) flags(1) reserved(3) data(size), 8-byte aligned.
void parse_v1_messages(io::Cursor c, HeaderReader& reader, size_t& remaining_count) {
  while (c.remaining() >= 8 && remaining_count > 0) {
    uint16_t type = c.u16();
    uint16_t size = c.u16();
    uint8_t flags = c.u8();
    c.skip(3);
    uint64_t offset = c.file_offset();
    io::ByteSpan data = c.take_span(size);
    --remaining_count;
    reader.add(RawMessage{data, offset, type, 0, flags});
  }
}

// Version 2 messages: type(1) size(2) flags(1) [creation order(2)] data(size); a gap
// smaller than a message prefix may end the block.
void parse_v2_messages(io::Cursor c, size_t end, bool has_order, HeaderReader& reader) {
  size_t prefix = has_order ? 6 : 4;
  while (c.pos() + prefix <= end) {
    uint8_t type = c.u8();
    uint16_t size = c.u16();
    uint8_t flags = c.u8();
    uint16_t order = has_order ? c.u16() : 0;
    if (c.pos() + size > end) c.fail("object header message runs past its block");
    uint64_t offset = c.file_offset();
    io::ByteSpan data = c.take_span(size);
    reader.add(RawMessage{data, offset, type, order, flags});
  }
}

void read_v1(const Context& ctx, uint64_t address, std::vector<RawMessage>& out) {
  io::Cursor c = ctx.at(address, "object header");
  c.skip(2);  // version, reserved
  size_t count = c.u16();
  c.skip(4);  // reference count
  uint64_t size = c.u32();
  c.skip(4);  // pads the 12-byte prefix to 16
  HeaderReader reader(ctx, out);
  parse_v1_messages(ctx.block(address + 16, size, "object header"), reader, count);
  reader.drain([&](io::Cursor block) { parse_v1_messages(block, reader, count); });
}

void read_v2(const Context& ctx, uint64_t address, ObjectHeader& out, std::vector<RawMessage>& messages) {
  io::Cursor c = ctx.at(address, "object header");
  size_t start = c.pos();
  c.expect_signature("OHDR", "object header");
  out.version = c.u8();
  if (out.version != 2) c.fail("unsupported object header version " + std::to_string(out.version));
  uint8_t flags = c.u8();
  if (flags & 0x20) c.skip(16);  // access, modification, change, birth times
  if (flags & 0x10) c.skip(4);   // attribute storage phase change values
  bool has_order = flags & 0x04;
  out.attr_creation_order_tracked = flags & 0x04;
  out.attr_creation_order_indexed = flags & 0x08;
  uint64_t chunk0 = c.uint_le(1u << (flags & 0x03));
  // Hardening: `c.need(chunk0 + 4)` wrapped for chunk0 near 2^64 (then `end` lay before
  // the messages); check the two parts separately.
  c.need(chunk0);
  if (c.remaining() - chunk0 < 4) c.fail("object header chunk runs past the end of the file");
  size_t end = c.pos() + static_cast<size_t>(chunk0);
  HeaderReader reader(ctx, messages);
  parse_v2_messages(c, end, has_order, reader);
  c.seek(end);
  verify_checksum_at(c, start, "object header");
  reader.drain([&](io::Cursor block) {
    size_t size = block.span().size();
    block.expect_signature("OCHK", "object header continuation");
    if (size < 8) block.fail("object header continuation block too small");
    parse_v2_messages(block, size - 4, has_order, reader);
    block.seek(size - 4);
    verify_checksum_at(block, 0, "object header continuation");
  });
}

}  // namespace

ObjectHeader read_object_header(const Context& ctx, uint64_t address, std::vector<RawMessage>& storage) {
  ObjectHeader out;
  out.address = address;
  storage.clear();
  io::Cursor c = ctx.at(address, "object header");
  c.need(4);
  if (c.span()[c.pos()] == 1) {
    out.version = 1;
    read_v1(ctx, address, storage);
  } else if (c.signature("OHDR")) {
    read_v2(ctx, address, out, storage);
  } else {
    throw FormatError("not an object header", c.file_offset() - 4);
  }
  out.messages = io::Span<const RawMessage>(storage.data(), storage.size());
  return out;
}

}  // namespace weightio::hdf5
