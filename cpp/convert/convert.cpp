#include <cmath>
#include <cstring>
#include <stdexcept>

#include "convert/element_type.h"
#include "io/errors.h"

namespace weightio::convert {

namespace {

bool probe_big_endian() {
  const uint16_t probe = 1;
  uint8_t first;
  std::memcpy(&first, &probe, 1);
  return first == 0;
}
const bool kHostBigEndian = probe_big_endian();

// An IEEE-like binary float with `E` exponent bits and `M` mantissa bits, from double,
// rounding to nearest even; NaN stays NaN (quiet), overflow becomes infinity.
uint16_t double_to_small(double d, int E, int M) {
  uint64_t bits;
  std::memcpy(&bits, &d, 8);
  const uint64_t sign = (bits >> 63) << (E + M);
  const uint64_t abs_bits = bits & ~(uint64_t{1} << 63);
  const int bias = (1 << (E - 1)) - 1;
  const uint64_t max_exp = (uint64_t{1} << E) - 1;
  if (abs_bits >= 0x7ff0000000000000ull) {
    if (abs_bits > 0x7ff0000000000000ull) return static_cast<uint16_t>(sign | (max_exp << M) | (uint64_t{1} << (M - 1)));
    return static_cast<uint16_t>(sign | (max_exp << M));
  }
  int e = static_cast<int>(abs_bits >> 52) - 1023;
  if (e < 1 - bias) {  // zero or subnormal in the target
    double scaled = std::ldexp(std::fabs(d), M - (1 - bias));
    return static_cast<uint16_t>(sign | static_cast<uint64_t>(std::nearbyint(scaled)));
  }
  const uint64_t mant = abs_bits & ((uint64_t{1} << 52) - 1);
  const int shift = 52 - M;
  uint64_t h = (static_cast<uint64_t>(e + bias) << M) | (mant >> shift);
  const uint64_t rem = mant & ((uint64_t{1} << shift) - 1);
  const uint64_t halfway = uint64_t{1} << (shift - 1);
  if (rem > halfway || (rem == halfway && (h & 1))) ++h;
  if (h >= (max_exp << M)) return static_cast<uint16_t>(sign | (max_exp << M));
  return static_cast<uint16_t>(sign | h);
}

double small_to_double(uint16_t v, int E, int M) {
  const bool neg = (v >> (E + M)) & 1;
  const int bias = (1 << (E - 1)) - 1;
  const unsigned exp = (v >> M) & ((1u << E) - 1);
  const unsigned mant = v & ((1u << M) - 1);
  double r;
  if (exp == (1u << E) - 1) {
    r = mant ? std::nan("") : INFINITY;
  } else if (exp == 0) {
    r = std::ldexp(static_cast<double>(mant), 1 - bias - M);
  } else {
    r = std::ldexp(static_cast<double>(mant | (1u << M)), static_cast<int>(exp) - bias - M);
  }
  return neg ? -r : r;
}

// Loads element i of `src` as raw little-order bytes in a uint64 (byte-swapped if needed).
inline uint64_t load_bits(const uint8_t* p, uint32_t size, bool swap) {
  uint64_t v = 0;
  if (!swap) {
    std::memcpy(&v, p, size);  // little-endian host assumed for the value's low bytes
    if (kHostBigEndian) v >>= 8 * (8 - size);
  } else {
    for (uint32_t k = 0; k < size; ++k) v |= uint64_t{p[size - 1 - k]} << (8 * k);
  }
  return v;
}

inline void store_bits(uint8_t* p, uint64_t v, uint32_t size, bool swap) {
  if (!swap) {
    if (kHostBigEndian) v <<= 8 * (8 - size);
    std::memcpy(p, &v, size);
  } else {
    for (uint32_t k = 0; k < size; ++k) p[size - 1 - k] = static_cast<uint8_t>(v >> (8 * k));
  }
}

// Whether bytes of the given order must be reversed to read them as host integers
// (our load/store treat the host as little-endian and handle big-endian hosts above).
inline bool needs_swap(const ElementType& t) { return t.size > 1 && t.big_endian; }

double load_double(const uint8_t* p, const ElementType& t) {
  uint64_t b = load_bits(p, t.size, needs_swap(t));
  switch (t.kind) {
    case Kind::kBool: return b != 0;
    case Kind::kInt: {
      int64_t s = static_cast<int64_t>(b << (64 - 8 * t.size)) >> (64 - 8 * t.size);
      return static_cast<double>(s);
    }
    case Kind::kUInt: return static_cast<double>(b);
    case Kind::kFloat:
      if (t.size == 2) return half_to_double(static_cast<uint16_t>(b));
      if (t.size == 4) {
        uint32_t u = static_cast<uint32_t>(b);
        float f;
        std::memcpy(&f, &u, 4);
        return f;
      } else {
        double d;
        std::memcpy(&d, &b, 8);
        return d;
      }
    case Kind::kBFloat16: return bfloat16_to_double(static_cast<uint16_t>(b));
    case Kind::kRaw: break;
  }
  throw Error("cannot convert raw bytes to a number");
}

// Saturating-free float -> integer conversion like numpy's C cast on in-range values;
// out-of-range and NaN give the same result on every run (0) instead of undefined behaviour.
template <class T>
T float_to_int(double d) {
  if (!(d >= -9.3e18 && d <= 1.8e19)) return 0;
  if (d < 0) return static_cast<T>(static_cast<int64_t>(d));
  return d < 9.2e18 ? static_cast<T>(static_cast<int64_t>(d)) : static_cast<T>(static_cast<uint64_t>(d));
}

void store_double(uint8_t* p, double d, const ElementType& t) {
  uint64_t b = 0;
  switch (t.kind) {
    case Kind::kBool: b = d != 0; break;
    case Kind::kInt: b = static_cast<uint64_t>(float_to_int<int64_t>(d)); break;
    case Kind::kUInt: b = float_to_int<uint64_t>(d); break;
    case Kind::kFloat:
      if (t.size == 2) {
        b = double_to_half(d);
      } else if (t.size == 4) {
        float f = static_cast<float>(d);
        uint32_t u;
        std::memcpy(&u, &f, 4);
        b = u;
      } else {
        std::memcpy(&b, &d, 8);
      }
      break;
    case Kind::kBFloat16: b = double_to_bfloat16(d); break;
    case Kind::kRaw: throw Error("cannot convert a number to raw bytes");
  }
  store_bits(p, b, t.size, needs_swap(t));
}

bool is_integer(Kind k) { return k == Kind::kInt || k == Kind::kUInt || k == Kind::kBool; }

void byteswap_copy(const uint8_t* src, uint8_t* dst, size_t n, uint32_t size) {
  for (size_t i = 0; i < n; ++i, src += size, dst += size)
    for (uint32_t k = 0; k < size; ++k) dst[k] = src[size - 1 - k];
}

void f32_to_f16(const uint8_t* src, uint8_t* dst, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    float f;
    std::memcpy(&f, src + 4 * i, 4);
    uint16_t h = double_to_half(f);
    std::memcpy(dst + 2 * i, &h, 2);
  }
}

void f32_to_bf16(const uint8_t* src, uint8_t* dst, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    uint32_t u;
    std::memcpy(&u, src + 4 * i, 4);
    uint16_t b;
    if ((u & 0x7fffffffu) > 0x7f800000u) {
      b = static_cast<uint16_t>((u >> 16) | 0x40);
    } else {
      b = static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1)) >> 16);
    }
    std::memcpy(dst + 2 * i, &b, 2);
  }
}

void bf16_to_f32(const uint8_t* src, uint8_t* dst, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    uint16_t b;
    std::memcpy(&b, src + 2 * i, 2);
    uint32_t u = uint32_t{b} << 16;
    std::memcpy(dst + 4 * i, &u, 4);
  }
}

}  // namespace

double half_to_double(uint16_t h) { return small_to_double(h, 5, 10); }
uint16_t double_to_half(double d) { return double_to_small(d, 5, 10); }
double bfloat16_to_double(uint16_t b) { return small_to_double(b, 8, 7); }
uint16_t double_to_bfloat16(double d) { return double_to_small(d, 8, 7); }

bool host_is_big_endian() { return kHostBigEndian; }

bool ElementType::is_native_order() const { return size == 1 || big_endian == kHostBigEndian; }

std::string ElementType::typestr() const {
  if (kind == Kind::kBFloat16) return "bfloat16";
  char order = size == 1 ? '|' : (big_endian ? '>' : '<');
  char k = 'V';
  switch (kind) {
    case Kind::kBool: k = 'b'; break;
    case Kind::kInt: k = 'i'; break;
    case Kind::kUInt: k = 'u'; break;
    case Kind::kFloat: k = 'f'; break;
    default: order = '|'; break;
  }
  return std::string(1, order) + k + std::to_string(size);
}

ElementType ElementType::from_typestr(const std::string& s) {
  ElementType t;
  if (s == "bfloat16") return ElementType{Kind::kBFloat16, 2, false};
  if (s.size() < 3) throw std::invalid_argument("bad type string '" + s + "'");
  t.big_endian = s[0] == '>' || (s[0] == '=' && kHostBigEndian);
  t.size = static_cast<uint32_t>(std::stoul(s.substr(2)));
  switch (s[1]) {
    case 'b': t.kind = Kind::kBool; break;
    case 'i': t.kind = Kind::kInt; break;
    case 'u': t.kind = Kind::kUInt; break;
    case 'f': t.kind = Kind::kFloat; break;
    case 'S': case 'V': t.kind = Kind::kRaw; break;
    default: throw std::invalid_argument("unsupported type string '" + s + "'");
  }
  bool ok = t.kind == Kind::kRaw || ((t.size == 1 || t.size == 2 || t.size == 4 || t.size == 8) &&
                                     !(t.kind == Kind::kFloat && t.size == 1) && !(t.kind == Kind::kBool && t.size != 1));
  if (!ok) throw std::invalid_argument("unsupported type string '" + s + "'");
  return t;
}

bool can_convert(const ElementType& from, const ElementType& to) {
  if (from.kind == Kind::kRaw || to.kind == Kind::kRaw) return from.kind == to.kind && from.size == to.size;
  return true;
}

bool is_plain_copy(const ElementType& from, const ElementType& to) {
  return from.kind == to.kind && from.size == to.size &&
         (from.size == 1 || from.big_endian == to.big_endian || from.kind == Kind::kRaw);
}

void convert(const uint8_t* src, const ElementType& from, uint8_t* dst, const ElementType& to, size_t n) {
  if (n == 0) return;
  if (from.kind == to.kind && from.size == to.size) {
    if (is_plain_copy(from, to)) {
      std::memcpy(dst, src, n * from.size);
    } else {
      byteswap_copy(src, dst, n, from.size);
    }
    return;
  }
  if (!can_convert(from, to)) throw Error("cannot convert " + from.typestr() + " to " + to.typestr());
  const bool native_in = from.is_native_order() && !kHostBigEndian;
  const bool native_out = to.is_native_order() && !kHostBigEndian;
  // Hot paths of weight loading, on little-endian hosts.
  if (native_in && native_out && from.kind == Kind::kFloat && from.size == 4) {
    if (to.kind == Kind::kFloat && to.size == 2) return f32_to_f16(src, dst, n);
    if (to.kind == Kind::kBFloat16) return f32_to_bf16(src, dst, n);
  }
  if (native_in && native_out && from.kind == Kind::kBFloat16 && to.kind == Kind::kFloat && to.size == 4)
    return bf16_to_f32(src, dst, n);
  if (native_in && native_out && from.kind == Kind::kFloat && to.kind == Kind::kFloat) {
    if (from.size == 8 && to.size == 4) {
      for (size_t i = 0; i < n; ++i) {
        double d;
        std::memcpy(&d, src + 8 * i, 8);
        float f = static_cast<float>(d);
        std::memcpy(dst + 4 * i, &f, 4);
      }
      return;
    }
    if (from.size == 4 && to.size == 8) {
      for (size_t i = 0; i < n; ++i) {
        float f;
        std::memcpy(&f, src + 4 * i, 4);
        double d = f;
        std::memcpy(dst + 8 * i, &d, 8);
      }
      return;
    }
  }
  if (is_integer(from.kind) && is_integer(to.kind)) {
    // Exact for all integer widths: go through the raw 64-bit pattern, sign-extended.
    for (size_t i = 0; i < n; ++i) {
      uint64_t b = load_bits(src + i * from.size, from.size, needs_swap(from));
      if (from.kind == Kind::kInt && from.size < 8) {
        int shift = 64 - 8 * static_cast<int>(from.size);
        b = static_cast<uint64_t>(static_cast<int64_t>(b << shift) >> shift);
      }
      if (from.kind == Kind::kBool || to.kind == Kind::kBool) b = b != 0;
      store_bits(dst + i * to.size, b, to.size, needs_swap(to));
    }
    return;
  }
  for (size_t i = 0; i < n; ++i) store_double(dst + i * to.size, load_double(src + i * from.size, from), to);
}

}  // namespace weightio::convert
