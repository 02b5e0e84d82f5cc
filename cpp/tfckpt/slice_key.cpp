#include "tfckpt/slice_key.h"

namespace weightio::tfckpt {

// A length byte, then the value big-endian with leading zero bytes dropped (0 -> "\x00").
void ordered_write_num_increasing(std::string& dst, uint64_t v) {
  unsigned char buf[8];
  int len = 0;
  while (v > 0) {
    buf[7 - len] = static_cast<unsigned char>(v & 0xff);
    v >>= 8;
    ++len;
  }
  dst.push_back(static_cast<char>(len));
  dst.append(reinterpret_cast<const char*>(buf + 8 - len), static_cast<size_t>(len));
}

// Bytes with 0x00 escaped as 00 ff and 0xff as ff 00, then the separator 00 01.
void ordered_write_string(std::string& dst, const std::string& s) {
  for (char ch : s) {
    if (ch == '\0') {
      dst.push_back('\0');
      dst.push_back('\xff');
    } else if (ch == '\xff') {
      dst.push_back('\xff');
      dst.push_back('\0');
    } else {
      dst.push_back(ch);
    }
  }
  dst.push_back('\0');
  dst.push_back('\x01');
}

// The sign bit, then as many copies of it as bytes follow the first (a delimiting opposite
// bit ends them), then the value in two's complement, big-endian: 1 to 10 bytes.
void ordered_write_signed_num_increasing(std::string& dst, int64_t v) {
  const uint64_t x = v < 0 ? ~static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
  if (x < 64) {
    dst.push_back(static_cast<char>(0x80 ^ static_cast<uint8_t>(v)));
    return;
  }
  int bits = 64 - __builtin_clzll(x);  // 7..63 value bits
  // n bytes hold n*7-1 value bits next to the sign and size bits.
  int len = (bits + 1 + 6) / 7;
  if (len > 10) len = 10;
  unsigned char buf[10];
  const unsigned char sign = v < 0 ? 0xff : 0x00;
  buf[0] = sign;
  buf[1] = sign;
  for (int i = 0; i < 8; ++i) buf[2 + i] = static_cast<unsigned char>(static_cast<uint64_t>(v) >> (56 - 8 * i));
  unsigned char* begin = buf + 10 - len;
  // Header bits: len-1 ones after the sign bit (which is 1 for non-negative numbers), i.e.
  // the first `len` bits set, xor'ed over the sign-extended value.
  static const unsigned char kHeader[11][2] = {{0, 0},       {0x80, 0},    {0xc0, 0},    {0xe0, 0},
                                               {0xf0, 0},    {0xf8, 0},    {0xfc, 0},    {0xfe, 0},
                                               {0xff, 0},    {0xff, 0x80}, {0xff, 0xc0}};
  begin[0] ^= kHeader[len][0];
  begin[1] ^= kHeader[len][1];
  dst.append(reinterpret_cast<const char*>(begin), static_cast<size_t>(len));
}

std::string encode_tensor_name_slice(const std::string& name, const std::vector<int64_t>& starts,
                                     const std::vector<int64_t>& lengths) {
  std::string key;
  ordered_write_num_increasing(key, 0);
  ordered_write_string(key, name);
  ordered_write_num_increasing(key, starts.size());
  for (size_t d = 0; d < starts.size(); ++d) {
    ordered_write_signed_num_increasing(key, starts[d]);
    ordered_write_signed_num_increasing(key, lengths[d]);
  }
  return key;
}

}  // namespace weightio::tfckpt
