// TensorFlow's DataType enum (tensorflow/core/framework/types.proto) as the bundle reader
// needs it: the element size on disk, how to byte-swap it, and the element type the bulk
// conversion kernels know it as (quantized types as their integers; kRaw for the types they
// cannot convert: complex, float8, int4...). The numpy dtype of each is chosen by the Python layer.
#pragma once
#include <cstdint>
#include <string>

#include "convert/element_type.h"

namespace weightio::tfckpt {

enum DataType : int32_t {
  DT_INVALID = 0,
  DT_FLOAT = 1,
  DT_DOUBLE = 2,
  DT_INT32 = 3,
  DT_UINT8 = 4,
  DT_INT16 = 5,
  DT_INT8 = 6,
  DT_STRING = 7,
  DT_COMPLEX64 = 8,
  DT_INT64 = 9,
  DT_BOOL = 10,
  DT_QINT8 = 11,
  DT_QUINT8 = 12,
  DT_QINT32 = 13,
  DT_BFLOAT16 = 14,
  DT_QINT16 = 15,
  DT_QUINT16 = 16,
  DT_UINT16 = 17,
  DT_COMPLEX128 = 18,
  DT_HALF = 19,
  DT_RESOURCE = 20,
  DT_VARIANT = 21,
  DT_UINT32 = 22,
  DT_UINT64 = 23,
  DT_FLOAT8_E5M2 = 24,
  DT_FLOAT8_E4M3FN = 25,
  DT_FLOAT8_E4M3FNUZ = 26,
  DT_FLOAT8_E4M3B11FNUZ = 27,
  DT_FLOAT8_E5M2FNUZ = 28,
  DT_INT4 = 29,
  DT_UINT4 = 30,
  DT_INT2 = 31,
  DT_UINT2 = 32,
  DT_FLOAT4_E2M1FN = 33,
};

struct DTypeInfo {
  const char* name = nullptr;     // TensorFlow's name: "float32", "bfloat16", "string", ...
  uint32_t size = 0;              // bytes per element on disk; 0 for string/resource/variant
  uint32_t swap_unit = 1;         // byte-swap granularity (complex: each half)
  convert::ElementType element;   // what the conversion kernels see (little-endian)
};

// The description of `dt`; nullptr for values this reader does not know.
const DTypeInfo* dtype_info(int32_t dt);
// TensorFlow's name for messages, "DataType(N)" for values this reader does not know.
std::string dtype_enum_name(int32_t dt);

// True for the types whose bytes are stored raw, element after element (DataTypeCanUseMemcpy).
inline bool is_fixed_size(int32_t dt) {
  const DTypeInfo* d = dtype_info(dt);
  return d != nullptr && d->size > 0;
}

}  // namespace weightio::tfckpt
