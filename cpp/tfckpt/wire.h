// Varints and a protobuf wire-format reader (protobuf encoding spec: varint, 64-bit,
// length-delimited and 32-bit wire types), bounds-checked over a ByteSpan. Enough to decode
// the few messages a tensor bundle holds without linking protobuf. Deprecated group wire
// types (3, 4) never occur in the proto3 messages read here and are rejected.
#pragma once
#include <cstdint>
#include <string>

#include "io/cursor.h"
#include "io/errors.h"
#include "io/span.h"

namespace weightio::tfckpt {

// A LevelDB / protobuf base-128 varint of at most 10 bytes (64 bits).
inline uint64_t read_varint64(io::Cursor& c) {
  uint64_t v = 0;
  for (unsigned shift = 0; shift < 70; shift += 7) {
    uint8_t b = c.u8();
    if (shift == 63 && b > 1) c.fail("varint overflows 64 bits");
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) return v;
  }
  c.fail("varint longer than 10 bytes");
}

// A varint that must fit 32 bits (LevelDB's block entry lengths, 5 bytes at most).
inline uint32_t read_varint32(io::Cursor& c) {
  uint64_t at = c.file_offset();
  uint32_t v = 0;
  for (unsigned shift = 0; shift < 35; shift += 7) {
    uint8_t b = c.u8();
    if (shift == 28 && b > 0x0f) throw FormatError("varint32 overflows 32 bits", at);
    v |= static_cast<uint32_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) return v;
  }
  throw FormatError("varint32 longer than 5 bytes", at);
}

enum class WireType : uint8_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

// Reads the fields of one message in order. Usage:
//   WireReader r(bytes, base);
//   while (r.next()) switch (r.field()) { case 1: x = r.varint(); break; default: r.skip(); }
// A value accessor whose wire type does not match the field's is skipped like an unknown
// field (what protobuf's own parser does), so readers use `is(WireType)` before reading.
class WireReader {
 public:
  WireReader(io::ByteSpan span, uint64_t base) : c_(span, base) {}

  bool next() {
    if (c_.remaining() == 0) return false;
    tag_offset_ = c_.file_offset();
    uint64_t tag = read_varint64(c_);
    uint64_t type = tag & 7;
    field_ = tag >> 3;
    if (field_ == 0 || field_ > 0x1fffffff) throw FormatError("bad protobuf field number", tag_offset_);
    if (type != 0 && type != 1 && type != 2 && type != 5)
      throw FormatError("unsupported protobuf wire type " + std::to_string(type), tag_offset_);
    type_ = static_cast<WireType>(type);
    return true;
  }
  uint64_t field() const { return field_; }
  WireType type() const { return type_; }
  bool is(WireType t) const { return type_ == t; }
  uint64_t tag_offset() const { return tag_offset_; }
  uint64_t offset() const { return c_.file_offset(); }

  uint64_t varint() { return read_varint64(c_); }
  uint32_t fixed32() { return c_.u32(); }
  uint64_t fixed64() { return c_.u64(); }
  // The payload of a length-delimited field (a string, bytes, a message, a packed array).
  io::ByteSpan bytes(uint64_t* payload_offset = nullptr) {
    uint64_t n = read_varint64(c_);
    if (payload_offset) *payload_offset = c_.file_offset();
    return c_.take_span(n);
  }
  std::string string() {
    io::ByteSpan s = bytes();
    return std::string(reinterpret_cast<const char*>(s.data()), s.size());
  }
  // A nested message, read by its own WireReader (offsets stay absolute).
  WireReader message() {
    uint64_t at = 0;
    io::ByteSpan s = bytes(&at);
    return WireReader(s, at);
  }
  void skip() {
    switch (type_) {
      case WireType::kVarint: (void)varint(); break;
      case WireType::kFixed64: c_.skip(8); break;
      case WireType::kLengthDelimited: (void)bytes(); break;
      case WireType::kFixed32: c_.skip(4); break;
    }
  }

 private:
  io::Cursor c_;
  uint64_t field_ = 0;
  WireType type_ = WireType::kVarint;
  uint64_t tag_offset_ = 0;
};

}  // namespace weightio::tfckpt
