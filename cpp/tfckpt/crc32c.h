// CRC-32C (Castagnoli), as TensorFlow's crc32c library computes it: the checksum of table
// blocks (masked, in each 5-byte block trailer) and of tensor bytes in a bundle's data files
// (masked, in BundleEntryProto.crc32c).
#pragma once
#include <cstddef>
#include <cstdint>

namespace weightio::tfckpt {

// Extends `crc` (the CRC-32C of some bytes A) to the CRC-32C of A followed by data[0, n).
// Uses the SSE4.2 crc32 instruction when the CPU has it, slicing-by-8 otherwise.
uint32_t crc32c_extend(uint32_t crc, const uint8_t* data, size_t n);
inline uint32_t crc32c(const uint8_t* data, size_t n) { return crc32c_extend(0, data, n); }

// TensorFlow stores "masked" CRCs (a rotation plus a constant) so that the CRC of bytes that
// themselves contain CRCs stays well distributed (tsl/lib/hash/crc32c.h, Mask/Unmask).
constexpr uint32_t kCrcMaskDelta = 0xa282ead8u;
inline uint32_t crc32c_mask(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + kCrcMaskDelta; }
inline uint32_t crc32c_unmask(uint32_t masked) {
  uint32_t rot = masked - kCrcMaskDelta;
  return (rot >> 17) | (rot << 15);
}

// Fuzz builds (FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION, see cpp/fuzz/README.md) accept any
// stored checksum of index blocks and string lengths, so mutations reach the parsers behind
// them. Never defined outside fuzz builds.
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
constexpr bool kCheckStructureChecksums = false;
#else
constexpr bool kCheckStructureChecksums = true;
#endif

}  // namespace weightio::tfckpt
