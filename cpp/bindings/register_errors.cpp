// Maps the core's C++ exceptions onto weightio's Python exceptions (weightio/errors.py).
#include <pybind11/pybind11.h>

#include <cstring>

#include "io/errors.h"

namespace py = pybind11;

namespace {
// Raises weightio.errors.<name>(message); the classes live in Python so users can catch them.
void raise_weightio(const char* name, const char* message) {
  py::object cls = py::module_::import("weightio.errors").attr(name);
  // Messages quote names and link targets from the file, which need not be valid UTF-8.
  PyObject* text = PyUnicode_DecodeUTF8(message, static_cast<py::ssize_t>(std::strlen(message)), "backslashreplace");
  if (!text) return;  // the decode error stays set
  PyErr_SetObject(cls.ptr(), text);
  Py_DECREF(text);
}
}  // namespace

void register_errors(py::module_&) {
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const weightio::ChecksumError& e) {
      raise_weightio("ChecksumError", e.what());
    } catch (const weightio::FormatError& e) {
      raise_weightio("FormatError", e.what());
    } catch (const weightio::UnsupportedFeatureError& e) {
      raise_weightio("UnsupportedFeatureError", e.what());
    } catch (const weightio::NotFoundError& e) {
      raise_weightio("NotFoundError", e.what());
    } catch (const weightio::IoError& e) {
      py::object err = py::module_::import("builtins").attr("OSError")(e.error_number(), e.what());
      PyErr_SetObject(PyExc_OSError, err.ptr());
    } catch (const weightio::Error& e) {
      raise_weightio("Error", e.what());
    }
  });
}
