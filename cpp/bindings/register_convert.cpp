// Conversion kernels exposed for tests and for converting arrays already in memory.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <map>
#include <stdexcept>

#include "bindings/element_types.h"
#include "io/errors.h"

namespace py = pybind11;
using namespace weightio;

namespace weightio::bindings {

convert::ElementType element_type_of(const py::dtype& dt) {
  // Read numpy's descriptor fields directly: dtype.name and dtype.str run Python code.
  const char kind = dt.kind();
  const auto size = static_cast<uint32_t>(dt.itemsize());
  const bool big = dt.byteorder() == '>' || (dt.byteorder() == '=' && convert::host_is_big_endian());
  if (kind == 'V' && size == 2 && dt.num() >= 256) {  // a user-defined type: bfloat16 (ml_dtypes)?
    if (std::string(py::str(dt.attr("name"))) == "bfloat16") return {convert::Kind::kBFloat16, 2, false};
  }
  switch (kind) {
    case 'b': if (size == 1) return {convert::Kind::kBool, 1, false}; break;
    case 'i': if (size == 1 || size == 2 || size == 4 || size == 8) return {convert::Kind::kInt, size, big}; break;
    case 'u': if (size == 1 || size == 2 || size == 4 || size == 8) return {convert::Kind::kUInt, size, big}; break;
    case 'f': if (size == 2 || size == 4 || size == 8) return {convert::Kind::kFloat, size, big}; break;
    case 'S': case 'V': if (size > 0) return {convert::Kind::kRaw, size, false}; break;
    default: break;
  }
  throw Error("unsupported output dtype " + std::string(py::str(dt)));
}

py::dtype dtype_of(const convert::ElementType& t) {
  if (t.kind == convert::Kind::kBFloat16) return py::dtype::from_args(py::module_::import("ml_dtypes").attr("bfloat16"));
  std::string s = t.typestr();
  if (t.kind == convert::Kind::kRaw) s = "|V" + std::to_string(t.size);
  return py::dtype(s);
}

bool have_bfloat16() {
  static int cached = -1;
  if (cached < 0) {
    try {
      py::module_::import("ml_dtypes");
      cached = 1;
    } catch (const py::error_already_set&) {
      cached = 0;
    }
  }
  return cached == 1;
}

}  // namespace weightio::bindings

void register_convert(py::module_& m) {
  m.def("astype", [](py::array src, py::dtype to_dtype) {
        if (!(src.flags() & py::array::c_style)) throw std::invalid_argument("src must be C-contiguous");
        convert::ElementType from = bindings::element_type_of(src.dtype());
        convert::ElementType to = bindings::element_type_of(to_dtype);
        std::vector<py::ssize_t> shape(src.shape(), src.shape() + src.ndim());
        py::array out(to_dtype, shape);
        const uint8_t* s = static_cast<const uint8_t*>(src.data());
        uint8_t* d = static_cast<uint8_t*>(out.mutable_data());
        size_t n = static_cast<size_t>(src.size());
        {
          py::gil_scoped_release release;
          convert::convert(s, from, d, to, n);
        }
        return out;
      },
      py::arg("src"), py::arg("dtype"), "Converts a C-contiguous array with weightio's kernels (tests, benchmarks)");
  m.def("memory_of", [](const py::sequence& arrays) {
        // Where each array's bytes are and how many (for weightio's TensorFlow assign op, which
        // copies from there while the caller holds the arrays): ~0.1 us an array, where
        // Python's array.ctypes.data costs ~1 us.
        const auto n = static_cast<py::ssize_t>(py::len(arrays));
        py::array_t<int64_t> addresses(n), sizes(n);
        int64_t* address = addresses.mutable_data();
        int64_t* size = sizes.mutable_data();
        for (py::ssize_t i = 0; i < n; ++i) {
          py::object item = arrays[static_cast<size_t>(i)];
          if (!py::isinstance<py::array>(item)) throw std::invalid_argument("memory_of: not a numpy array");
          auto array = py::reinterpret_borrow<py::array>(item);
          if (!(array.flags() & py::array::c_style)) throw std::invalid_argument("memory_of: not C-contiguous");
          address[i] = static_cast<int64_t>(reinterpret_cast<intptr_t>(array.data()));
          size[i] = static_cast<int64_t>(array.nbytes());
        }
        return py::make_tuple(addresses, sizes);
      },
      py::arg("arrays"), "(addresses, byte sizes) of C-contiguous numpy arrays, as int64 arrays");
}
