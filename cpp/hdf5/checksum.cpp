#include "hdf5/checksum.h"

namespace weightio::hdf5 {

namespace {
inline uint32_t rot(uint32_t x, int k) { return (x << k) | (x >> (32 - k)); }

inline void mix(uint32_t& a, uint32_t& b, uint32_t& c) {
  a -= c; a ^= rot(c, 4);  c += b;
  b -= a; b ^= rot(a, 6);  a += c;
  c -= b; c ^= rot(b, 8);  b += a;
  a -= c; a ^= rot(c, 16); c += b;
  b -= a; b ^= rot(a, 19); a += c;
  c -= b; c ^= rot(b, 4);  b += a;
}

inline void final_mix(uint32_t& a, uint32_t& b, uint32_t& c) {
  c ^= b; c -= rot(b, 14);
  a ^= c; a -= rot(c, 11);
  b ^= a; b -= rot(a, 25);
  c ^= b; c -= rot(b, 16);
  a ^= c; a -= rot(c, 4);
  b ^= a; b -= rot(a, 14);
  c ^= b; c -= rot(b, 24);
}

inline uint32_t word(const uint8_t* k, size_t n) {
  uint32_t v = 0;
  for (size_t i = 0; i < n; ++i) v |= static_cast<uint32_t>(k[i]) << (8 * i);
  return v;
}
}  // namespace

uint32_t lookup3(const uint8_t* k, size_t length, uint32_t initval) {
  uint32_t a, b, c;
  a = b = c = 0xdeadbeefu + static_cast<uint32_t>(length) + initval;
  while (length > 12) {
    a += word(k, 4);
    b += word(k + 4, 4);
    c += word(k + 8, 4);
    mix(a, b, c);
    length -= 12;
    k += 12;
  }
  if (length == 0) return c;
  // The last 1..12 bytes, zero-padded.
  a += word(k, length < 4 ? length : 4);
  if (length > 4) b += word(k + 4, length < 8 ? length - 4 : 4);
  if (length > 8) c += word(k + 8, length - 8);
  final_mix(a, b, c);
  return c;
}

uint32_t fletcher32(const uint8_t* data, size_t length) {
  uint32_t sum1 = 0, sum2 = 0;
  size_t words = length / 2;
  const uint8_t* p = data;
  // Reduce at least every 360 words so the 32-bit sums cannot overflow.
  while (words > 0) {
    size_t block = words > 360 ? 360 : words;
    words -= block;
    do {
      sum1 += static_cast<uint32_t>((p[0] << 8) | p[1]);
      sum2 += sum1;
      p += 2;
    } while (--block);
    sum1 = (sum1 & 0xffff) + (sum1 >> 16);
    sum2 = (sum2 & 0xffff) + (sum2 >> 16);
  }
  if (length % 2) {
    sum1 += static_cast<uint32_t>(*p) << 8;
    sum2 += sum1;
    sum1 = (sum1 & 0xffff) + (sum1 >> 16);
    sum2 = (sum2 & 0xffff) + (sum2 >> 16);
  }
  sum1 = (sum1 & 0xffff) + (sum1 >> 16);
  sum2 = (sum2 & 0xffff) + (sum2 >> 16);
  return (sum2 << 16) | sum1;
}

}  // namespace weightio::hdf5
