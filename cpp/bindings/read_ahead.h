// Values read into given arrays by threads of their own while the caller goes on, shared by
// the HDF5 and TensorFlow checkpoint bindings (weightio.keras's first loads read their large
// values while Keras's traversal, or a checkpoint's matching, runs in Python).
//
// The threads never take the GIL. `finish()` reads what has not been begun in the calling
// thread too, waits for the rest and says which values were read; a value whose read failed
// is left for the caller to read again (and to report). The object keeps its owner (the open
// file) and the arrays alive until it is gone; dropping it unfinished stops the threads after
// the values they are reading.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

namespace weightio::bindings {

// Hidden, like the pybind11 types it holds: the class is internal to the module.
#if defined(__GNUG__) && !defined(_WIN32)
#define WEIGHTIO_HIDDEN __attribute__((visibility("hidden")))
#else
#define WEIGHTIO_HIDDEN
#endif

class WEIGHTIO_HIDDEN ReadAhead {
 public:
  // `read(i)` reads value i into its array (throwing on failure); it runs on the threads
  // without the GIL, so it must not touch Python objects. `owner` and `outs` are only kept.
  ReadAhead(pybind11::object owner, std::vector<pybind11::array> outs, std::function<void(size_t)> read, size_t count,
            unsigned threads);
  ReadAhead(const ReadAhead&) = delete;
  ReadAhead& operator=(const ReadAhead&) = delete;
  ~ReadAhead();

  // Call with the GIL held; returns [bool] per value: read or not.
  pybind11::list finish();

 private:
  void work();
  void join();

  pybind11::object owner_;
  std::vector<pybind11::array> outs_;
  std::function<void(size_t)> read_one_;
  size_t count_;
  std::vector<uint8_t> read_;  // written by one thread each, read after the joins
  std::atomic<size_t> next_{0};
  std::vector<std::thread> workers_;
};

// The Python class (once, in the module that registers it; the other binding units return it).
void register_read_ahead(pybind11::module_& m);

// `out` as a writeable C-contiguous numpy array of `elements` elements (a caller's output
// for a whole value), or std::invalid_argument.
pybind11::array whole_output(const pybind11::object& out, uint64_t elements);

}  // namespace weightio::bindings
