#include "hdf5/messages/datatype.h"

#include <algorithm>

#include "hdf5/object_header.h"

namespace weightio::hdf5 {

namespace {

constexpr int kMaxTypeNesting = 16;

bool is_ieee(uint32_t size, unsigned exp_loc, unsigned exp_size, unsigned mant_loc, unsigned mant_size,
             uint32_t bias, unsigned sign_loc) {
  switch (size) {
    case 2: return exp_loc == 10 && exp_size == 5 && mant_loc == 0 && mant_size == 10 && bias == 15 && sign_loc == 15;
    case 4: return exp_loc == 23 && exp_size == 8 && mant_loc == 0 && mant_size == 23 && bias == 127 && sign_loc == 31;
    case 8: return exp_loc == 52 && exp_size == 11 && mant_loc == 0 && mant_size == 52 && bias == 1023 && sign_loc == 63;
    default: return false;
  }
}

// A committed datatype referenced by a shared message (spec IV.A.2, "Shared Message").
DataType read_committed(const Context& ctx, io::Cursor c, int depth) {
  unsigned version = c.u8();
  unsigned type = c.u8();
  uint64_t address;
  if (version == 1) {
    c.skip(6);
    address = ctx.read_offset(c);
  } else if (version == 2) {
    address = ctx.read_offset(c);
  } else if (version == 3) {
    if (type != 2)
      throw UnsupportedFeatureError("shared datatype stored in the shared object header message heap");
    address = ctx.read_offset(c);
  } else {
    c.fail("unsupported shared message version " + std::to_string(version));
  }
  if (depth > kMaxTypeNesting) c.fail("committed datatype chain too deep");
  std::vector<RawMessage> storage;
  ObjectHeader header = read_object_header(ctx, address, storage);
  const RawMessage* m = header.find(kMsgDatatype);
  if (!m) throw FormatError("committed datatype object has no datatype message", ctx.absolute(address, "datatype"));
  return parse_datatype(ctx, io::Cursor(m->data, m->offset), m->flags & kMsgFlagShared, depth + 1);
}

}  // namespace

namespace {

size_t bytes_to_encode(uint64_t v) {
  size_t n = 1;
  while (v >>= 8) ++n;
  return n;
}

std::string read_padded_name(io::Cursor& c, bool pad8) {
  size_t start = c.pos();
  std::string name = c.cstring(1u << 16);
  if (pad8) {
    size_t used = c.pos() - start;
    c.skip((8 - used % 8) % 8);
  }
  return name;
}

DataType parse_in_place(const Context& ctx, io::Cursor& c, int depth);

void parse_compound(const Context& ctx, io::Cursor& c, DataType& t, unsigned version, uint32_t bits, int depth) {
  unsigned count = bits & 0xffff;
  for (unsigned i = 0; i < count; ++i) {
    read_padded_name(c, version < 3);
    if (version < 3) {
      c.skip(4);      // byte offset
      c.skip(1 + 3);  // dimensionality, reserved
      c.skip(4 + 4);  // permutation, reserved
      c.skip(16);     // dimension sizes
    } else {
      c.skip(bytes_to_encode(t.size));
    }
    parse_in_place(ctx, c, depth + 1);
  }
}

void parse_enum(const Context& ctx, io::Cursor& c, DataType& t, unsigned version, uint32_t bits, int depth) {
  unsigned count = bits & 0xffff;
  t.base = std::make_shared<DataType>(parse_in_place(ctx, c, depth + 1));
  for (unsigned i = 0; i < count; ++i) t.enum_names.push_back(read_padded_name(c, version < 3));
  std::vector<uint64_t> values;
  const DataType& b = *t.base;
  if (b.cls != DataType::Class::kFixedPoint || b.size == 0 || b.size > 8) c.fail("enum base type is not an integer");
  // Hardening: the enum's elements are its base integers. A size that differs made the
  // numpy type (the base's) disagree with the stored element stride: attribute values
  // failed to reshape in Python (ValueError) and datasets were read with the wrong stride.
  if (t.size != b.size) c.fail("enum size differs from its base type size");
  for (unsigned i = 0; i < count; ++i) {
    const uint8_t* p = c.take(b.size);
    uint64_t v = 0;
    for (uint32_t k = 0; k < b.size; ++k) v |= uint64_t{p[b.big_endian ? b.size - 1 - k : k]} << (8 * k);
    values.push_back(v);
  }
  t.is_bool = b.size == 1 && count == 2 && t.enum_names[0] == "FALSE" && values[0] == 0 &&
              t.enum_names[1] == "TRUE" && values[1] == 1;
}

void parse_array(const Context& ctx, io::Cursor& c, DataType& t, unsigned version, int depth) {
  unsigned ndims = c.u8();
  if (ndims > limits::kMaxRank) c.fail("array datatype rank too large");
  if (version < 3) c.skip(3);
  for (unsigned i = 0; i < ndims; ++i) t.array_dims.push_back(c.u32());
  if (version < 3) c.skip(4 * ndims);  // permutation
  t.base = std::make_shared<DataType>(parse_in_place(ctx, c, depth + 1));
}

DataType parse_in_place(const Context& ctx, io::Cursor& c, int depth) {
  if (depth > kMaxTypeNesting) c.fail("datatype nesting too deep");
  DataType t;
  uint8_t class_version = c.u8();
  unsigned version = class_version >> 4;
  unsigned cls = class_version & 0x0f;
  uint32_t bits = static_cast<uint32_t>(c.uint_le(3));
  t.size = c.u32();
  if (version < 1 || version > 5) c.fail("unsupported datatype version " + std::to_string(version));
  if (cls > 10) c.fail("bad datatype class " + std::to_string(cls));
  // Hardening: HDF5 has no zero-size datatypes; one made an attribute's element count
  // unbounded by its data (n * 0 bytes) and numpy rejects itemsize 0 ("|S0", "|V0").
  if (t.size == 0) c.fail("datatype of size 0");
  t.cls = static_cast<DataType::Class>(cls);
  switch (t.cls) {
    case DataType::Class::kFixedPoint: {
      t.big_endian = bits & 0x01;
      t.is_signed = bits & 0x08;
      unsigned bit_offset = c.u16(), precision = c.u16();
      t.ieee = bit_offset == 0 && precision == 8 * t.size && (t.size == 1 || t.size == 2 || t.size == 4 || t.size == 8);
      break;
    }
    case DataType::Class::kFloatingPoint: {
      t.big_endian = bits & 0x01;
      bool vax = (bits & 0x40) != 0;
      unsigned sign_loc = (bits >> 8) & 0xff;
      unsigned bit_offset = c.u16(), precision = c.u16();
      unsigned exp_loc = c.u8(), exp_size = c.u8(), mant_loc = c.u8(), mant_size = c.u8();
      uint32_t bias = c.u32();
      t.ieee = !vax && bit_offset == 0 && precision == 8 * t.size &&
               is_ieee(t.size, exp_loc, exp_size, mant_loc, mant_size, bias, sign_loc);
      break;
    }
    case DataType::Class::kTime:
      c.skip(2);
      break;
    case DataType::Class::kString:
      t.string_pad = bits & 0x0f;
      t.charset = (bits >> 4) & 0x0f;
      break;
    case DataType::Class::kBitfield:
      t.big_endian = bits & 0x01;
      c.skip(4);
      break;
    case DataType::Class::kOpaque: {
      size_t tag_len = bits & 0xff;
      const uint8_t* p = c.take(tag_len);
      size_t n = 0;
      while (n < tag_len && p[n] != 0) ++n;
      t.tag.assign(reinterpret_cast<const char*>(p), n);
      break;
    }
    case DataType::Class::kCompound:
      parse_compound(ctx, c, t, version, bits, depth);
      break;
    case DataType::Class::kReference:
      break;
    case DataType::Class::kEnum:
      parse_enum(ctx, c, t, version, bits, depth);
      break;
    case DataType::Class::kVariableLength:
      t.vlen_string = (bits & 0x0f) == 1;
      t.string_pad = (bits >> 4) & 0x0f;
      t.charset = (bits >> 8) & 0x0f;
      t.base = std::make_shared<DataType>(parse_in_place(ctx, c, depth + 1));
      break;
    case DataType::Class::kArray:
      parse_array(ctx, c, t, version, depth);
      break;
  }
  return t;
}

}  // namespace

DataType parse_datatype(const Context& ctx, io::Cursor c, bool shared, int depth) {
  if (shared) return read_committed(ctx, c, depth);
  return parse_in_place(ctx, c, depth);
}

void normalize_fixed_strings(uint8_t* data, uint64_t n, size_t size, unsigned pad) {
  if (pad != 0 && pad != 2) return;
  for (uint64_t i = 0; i < n; ++i, data += size) {
    if (pad == 0) {
      size_t k = 0;
      while (k < size && data[k] != 0) ++k;
      std::fill(data + k, data + size, uint8_t{0});
    } else {
      size_t k = size;
      while (k > 0 && data[k - 1] == ' ') data[--k] = 0;
    }
  }
}

std::string DataType::numpy_typestr() const {
  const char order = size == 1 ? '|' : big_endian ? '>' : '<';
  switch (cls) {
    case Class::kFixedPoint:
      if (!ieee) return "";
      return std::string(1, order) + (is_signed ? 'i' : 'u') + std::to_string(size);
    case Class::kFloatingPoint:
      if (!ieee) return "";
      return std::string(1, order) + 'f' + std::to_string(size);
    case Class::kEnum:
      if (is_bool) return "|b1";
      return base ? base->numpy_typestr() : "";
    // Hardening: numpy's itemsize is a C int; "|S4294967295" raised TypeError in Python.
    case Class::kString:
      return size > INT32_MAX ? "" : "|S" + std::to_string(size);
    case Class::kOpaque:
      return size > INT32_MAX ? "" : "|V" + std::to_string(size);
    default:
      return "";
  }
}

std::string DataType::describe() const {
  static const char* names[] = {"integer", "float", "time", "string", "bitfield", "opaque",
                                "compound", "reference", "enum", "variable-length", "array"};
  std::string s = names[static_cast<int>(cls)];
  if (cls == Class::kVariableLength) s += vlen_string ? " string" : " sequence";
  if ((cls == Class::kFixedPoint || cls == Class::kFloatingPoint) && !ieee) s = "non-standard " + s;
  return s + " (" + std::to_string(size) + " bytes)";
}

}  // namespace weightio::hdf5
