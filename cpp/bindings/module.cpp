// weightio._core: one submodule per area, each registered by its own register_<area>.cpp.
#include <pybind11/pybind11.h>

namespace py = pybind11;

void register_errors(py::module_& m);
void register_hdf5(py::module_& m);
void register_convert(py::module_& m);
void register_tfckpt(py::module_& m);

PYBIND11_MODULE(_core, m) {
  m.doc() = "weightio's native core: an HDF5 reader without libhdf5, and bulk conversion kernels";
  register_errors(m);
  auto hdf5 = m.def_submodule("hdf5", "Native HDF5 reader");
  register_hdf5(hdf5);
  auto convert = m.def_submodule("convert", "Element conversion kernels");
  register_convert(convert);
  auto tfckpt = m.def_submodule("tfckpt", "Native TensorFlow checkpoint (tensor bundle) reader");
  register_tfckpt(tfckpt);
}
