#include "bindings/read_ahead.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <utility>

namespace py = pybind11;

namespace weightio::bindings {

ReadAhead::ReadAhead(py::object owner, std::vector<py::array> outs, std::function<void(size_t)> read, size_t count,
                     unsigned threads)
    : owner_(std::move(owner)), outs_(std::move(outs)), read_one_(std::move(read)), count_(count), read_(count, 0) {
  threads = std::max(1u, static_cast<unsigned>(std::min<size_t>(threads, count_)));
  try {
    for (unsigned t = 0; t < threads; ++t) workers_.emplace_back([this] { work(); });
  } catch (...) {  // no thread: the ones started stop, and the caller reads it all itself
    next_.store(count_);
    join();
    throw;
  }
}

ReadAhead::~ReadAhead() {
  next_.store(count_);  // nothing more is begun
  join();
}

py::list ReadAhead::finish() {
  {
    py::gil_scoped_release release;
    work();
    join();
  }
  py::list out;
  for (uint8_t r : read_) out.append(py::bool_(r != 0));
  return out;
}

void ReadAhead::work() {
  for (size_t i; (i = next_.fetch_add(1)) < count_;) {
    try {
      read_one_(i);
      read_[i] = 1;
    } catch (...) {  // left for the caller's own read, which reports it
    }
  }
}

void ReadAhead::join() {
  for (auto& w : workers_)
    if (w.joinable()) w.join();
}

void register_read_ahead(py::module_& m) {
  py::class_<ReadAhead>(m, "ReadAhead", "Values being read into given arrays by threads of their own")
      .def("finish", &ReadAhead::finish,
           "Reads what is not begun in this thread too, waits for the rest; which values were read");
}

py::array whole_output(const py::object& out, uint64_t elements) {
  if (!py::isinstance<py::array>(out)) throw std::invalid_argument("out must be a numpy array");
  py::array given = py::reinterpret_borrow<py::array>(out);
  if (!(given.flags() & py::array::c_style) || !given.writeable())
    throw std::invalid_argument("out must be a writeable C-contiguous array");
  if (static_cast<uint64_t>(given.size()) != elements)
    throw std::invalid_argument("out has " + std::to_string(given.size()) + " elements, the value " +
                                std::to_string(elements));
  return given;
}

}  // namespace weightio::bindings
