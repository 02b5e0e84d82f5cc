// The element types the bulk kernels convert between, independent of HDF5.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace weightio::convert {

enum class Kind : uint8_t { kBool, kInt, kUInt, kFloat, kBFloat16, kRaw };

struct ElementType {
  Kind kind = Kind::kRaw;
  uint32_t size = 0;
  bool big_endian = false;

  bool operator==(const ElementType& o) const {
    return kind == o.kind && size == o.size && (size == 1 || big_endian == o.big_endian);
  }
  bool operator!=(const ElementType& o) const { return !(*this == o); }
  bool is_native_order() const;
  bool is_numeric() const { return kind != Kind::kRaw; }

  // numpy typestr: "<f4", ">i2", "|b1", "|u1", "|S8", "|V2"; "bfloat16" for bfloat16.
  std::string typestr() const;
  static ElementType from_typestr(const std::string& s);
};

// The byte order of this machine.
bool host_is_big_endian();

// True when `from` can be converted to `to` element by element.
bool can_convert(const ElementType& from, const ElementType& to);

// True when converting is copying the bytes as they are (what convert() then does).
bool is_plain_copy(const ElementType& from, const ElementType& to);

// Converts `n` elements. Integer <-> integer wraps like numpy's astype; float -> integer
// truncates; float -> narrower float rounds to nearest even (like numpy / ml_dtypes).
void convert(const uint8_t* src, const ElementType& from, uint8_t* dst, const ElementType& to, size_t n);

// Converts one value (fill values and tests).
double half_to_double(uint16_t h);
uint16_t double_to_half(double d);
double bfloat16_to_double(uint16_t b);
uint16_t double_to_bfloat16(double d);

}  // namespace weightio::convert
