// A bounds-checked little-endian reader over a ByteSpan. Every read checks the span
// first and throws FormatError with the absolute file offset; nothing reads past the end.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "io/errors.h"
#include "io/span.h"

// Failure paths: kept out of line so that the checks in front of them inline.
#if defined(__GNUC__)
#define WEIGHTIO_COLD __attribute__((noinline, cold))
#elif defined(_MSC_VER)
#define WEIGHTIO_COLD __declspec(noinline)
#else
#define WEIGHTIO_COLD
#endif

namespace weightio::io {

// HDF5's "undefined address": all bits set, whatever the size of offsets.
constexpr uint64_t kUndefinedAddress = UINT64_MAX;

class Cursor {
 public:
  // `base` is the absolute file offset of span[0], used only in error messages.
  Cursor(ByteSpan span, uint64_t base = 0, size_t pos = 0) : span_(span), base_(base), pos_(pos) {}

  size_t pos() const { return pos_; }
  uint64_t file_offset() const { return base_ + pos_; }
  size_t remaining() const { return pos_ <= span_.size() ? span_.size() - pos_ : 0; }
  ByteSpan span() const { return span_; }

  void seek(size_t pos) {
    if (pos > span_.size()) fail("seek past end of structure");
    pos_ = pos;
  }
  void skip(uint64_t n) {
    need(n);
    pos_ += static_cast<size_t>(n);
  }
  void need(uint64_t n) const {
    if (n > remaining()) fail_truncated(n);
  }
  const uint8_t* take(uint64_t n) {
    need(n);
    const uint8_t* p = span_.data() + pos_;
    pos_ += static_cast<size_t>(n);
    return p;
  }
  ByteSpan take_span(uint64_t n) { return ByteSpan(take(n), static_cast<size_t>(n)); }

  uint8_t u8() { return *take(1); }
  uint16_t u16() { return static_cast<uint16_t>(uint_le(2)); }
  uint32_t u32() { return static_cast<uint32_t>(uint_le(4)); }
  uint64_t u64() { return uint_le(8); }

  // An unsigned little-endian integer of 1..8 bytes.
  uint64_t uint_le(unsigned n) {
    if (n == 0 || n > 8) fail_integer_size(n);
    const uint8_t* p = take(n);
    uint64_t v = 0;
    for (unsigned i = 0; i < n; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
    return v;
  }
  // An address of `n` bytes; all ones means undefined and maps to kUndefinedAddress.
  uint64_t address(unsigned n) {
    uint64_t v = uint_le(n);
    if (n < 8 && v == ((uint64_t{1} << (8 * n)) - 1)) return kUndefinedAddress;
    return v;
  }
  bool signature(const char* sig) {
    const uint8_t* p = take(4);
    return std::memcmp(p, sig, 4) == 0;
  }
  void expect_signature(const char* sig, const char* what) {
    uint64_t at = file_offset();
    if (!signature(sig)) throw FormatError(std::string("bad ") + what + " signature (expected '" + sig + "')", at);
  }
  // Reads a NUL-terminated string of at most `max` bytes (a view into the span).
  std::string_view cstring_view(size_t max) {
    size_t n = 0;
    while (true) {
      if (n >= remaining()) fail("unterminated string");
      if (span_.data()[pos_ + n] == 0) break;
      if (++n > max) fail("string too long");
    }
    std::string_view s(reinterpret_cast<const char*>(span_.data() + pos_), n);
    pos_ += n + 1;
    return s;
  }
  std::string cstring(size_t max) { return std::string(cstring_view(max)); }

  [[noreturn]] void fail(const std::string& what) const { throw FormatError(what, file_offset()); }

 private:
  [[noreturn]] WEIGHTIO_COLD void fail_truncated(uint64_t n) const {
    fail("truncated: need " + std::to_string(n) + " bytes, have " + std::to_string(remaining()));
  }
  [[noreturn]] WEIGHTIO_COLD void fail_integer_size(unsigned n) const {
    fail("bad integer size " + std::to_string(n));
  }

 public:

 private:
  ByteSpan span_;
  uint64_t base_;
  size_t pos_;
};

}  // namespace weightio::io
