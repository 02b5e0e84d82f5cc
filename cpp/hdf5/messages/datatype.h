// Datatype message 0x0003 (HDF5 spec 3.0, IV.A.2.d), versions 1-3, including committed
// (shared) datatypes.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "hdf5/context.h"

namespace weightio::hdf5 {

struct DataType {
  enum class Class : uint8_t {
    kFixedPoint = 0, kFloatingPoint = 1, kTime = 2, kString = 3, kBitfield = 4, kOpaque = 5,
    kCompound = 6, kReference = 7, kEnum = 8, kVariableLength = 9, kArray = 10,
  };
  Class cls = Class::kFixedPoint;
  uint32_t size = 0;        // bytes per element as stored
  bool big_endian = false;  // fixed/floating point, bitfield
  bool is_signed = false;   // fixed point
  bool ieee = false;        // floating point with standard IEEE 754 half/single/double layout
  unsigned string_pad = 0;  // 0 NULLTERM, 1 NULLPAD, 2 SPACEPAD (string, vlen string)
  unsigned charset = 0;     // 0 ASCII, 1 UTF-8
  bool vlen_string = false; // variable length: string (true) or sequence (false)
  bool is_bool = false;     // enum with exactly FALSE=0, TRUE=1 over a 1-byte integer (h5py's bool)
  std::string tag;          // opaque
  std::shared_ptr<DataType> base;  // enum, vlen, array
  std::vector<std::string> enum_names;
  std::vector<uint64_t> array_dims;

  // numpy's array-interface type string ("<f4", ">i2", "|b1", "|S8", "|V2"), or "" when
  // the type has no plain numpy equivalent this reader supports (compound, vlen, ...).
  std::string numpy_typestr() const;
  // Human-readable name of the class, for errors.
  std::string describe() const;
};

// Rewrites `n` fixed-length strings of `size` bytes the way HDF5 converts them to
// numpy's NUL-padded strings: NULLTERM (pad 0) drops everything after the first NUL,
// SPACEPAD (pad 2) turns trailing spaces into NULs. NULLPAD (pad 1) is left as is.
void normalize_fixed_strings(uint8_t* data, uint64_t n, size_t size, unsigned pad);

// Parses a datatype from `c`. `shared` says the message holds a shared-message reference
// (flag bit 1) that points at a committed datatype's object header.
DataType parse_datatype(const Context& ctx, io::Cursor c, bool shared = false, int depth = 0);

}  // namespace weightio::hdf5
