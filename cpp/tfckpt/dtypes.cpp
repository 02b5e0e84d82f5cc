#include "tfckpt/dtypes.h"

namespace weightio::tfckpt {

namespace {
using convert::ElementType;
using convert::Kind;

constexpr ElementType num(Kind k, uint32_t size) { return ElementType{k, size, false}; }
constexpr ElementType raw(uint32_t size) { return ElementType{Kind::kRaw, size, false}; }

// Indexed by the enum value; DT_INVALID and gaps have no name.
const DTypeInfo kTypes[] = {
    {},                                                     // 0 DT_INVALID
    {"float32", 4, 4, num(Kind::kFloat, 4)},                // 1
    {"float64", 8, 8, num(Kind::kFloat, 8)},                // 2
    {"int32", 4, 4, num(Kind::kInt, 4)},                    // 3
    {"uint8", 1, 1, num(Kind::kUInt, 1)},                   // 4
    {"int16", 2, 2, num(Kind::kInt, 2)},                    // 5
    {"int8", 1, 1, num(Kind::kInt, 1)},                     // 6
    {"string", 0, 1, raw(0)},                               // 7
    {"complex64", 8, 4, raw(8)},                            // 8
    {"int64", 8, 8, num(Kind::kInt, 8)},                    // 9
    {"bool", 1, 1, num(Kind::kBool, 1)},                    // 10
    {"qint8", 1, 1, num(Kind::kInt, 1)},                                // 11
    {"quint8", 1, 1, num(Kind::kUInt, 1)},                               // 12
    {"qint32", 4, 4, num(Kind::kInt, 4)},                               // 13
    {"bfloat16", 2, 2, num(Kind::kBFloat16, 2)},            // 14
    {"qint16", 2, 2, num(Kind::kInt, 2)},                               // 15
    {"quint16", 2, 2, num(Kind::kUInt, 2)},                              // 16
    {"uint16", 2, 2, num(Kind::kUInt, 2)},                  // 17
    {"complex128", 16, 8, raw(16)},                         // 18
    {"float16", 2, 2, num(Kind::kFloat, 2)},                // 19
    {"resource", 0, 1, raw(0)},                             // 20
    {"variant", 0, 1, raw(0)},                              // 21
    {"uint32", 4, 4, num(Kind::kUInt, 4)},                  // 22
    {"uint64", 8, 8, num(Kind::kUInt, 8)},                  // 23
    {"float8_e5m2", 1, 1, raw(1)},                          // 24
    {"float8_e4m3fn", 1, 1, raw(1)},                        // 25
    {"float8_e4m3fnuz", 1, 1, raw(1)},                      // 26
    {"float8_e4m3b11fnuz", 1, 1, raw(1)},                   // 27
    {"float8_e5m2fnuz", 1, 1, raw(1)},                      // 28
    {"int4", 1, 1, raw(1)},                                 // 29 (one element per byte, like ml_dtypes)
    {"uint4", 1, 1, raw(1)},                                // 30
    {"int2", 1, 1, raw(1)},                                 // 31
    {"uint2", 1, 1, raw(1)},                                // 32
    {"float4_e2m1fn", 1, 1, raw(1)},                        // 33
};
constexpr int32_t kNumTypes = static_cast<int32_t>(sizeof(kTypes) / sizeof(kTypes[0]));
}  // namespace

const DTypeInfo* dtype_info(int32_t dt) {
  if (dt <= 0 || dt >= kNumTypes) return nullptr;
  return &kTypes[dt];
}

std::string dtype_enum_name(int32_t dt) {
  const DTypeInfo* d = dtype_info(dt);
  if (d == nullptr) return "DataType(" + std::to_string(dt) + ")";
  return d->name;
}

}  // namespace weightio::tfckpt
