// Where the bulk readers (HDF5 and TensorFlow checkpoint read_many) put the arrays they
// return, shared by both binding units.
//
// Outputs smaller than kSharedOutputLimit share one allocation (the slab: one malloc instead
// of thousands); larger ones get an allocation each. All start on a 64-byte boundary, so that
// frameworks (TensorFlow, JAX, torch through DLPack) adopt them without a copy.
//
// Why not one slab for everything: a slab of tens of MiB is an mmap of its own, unmapped when
// freed, so every load of a model pays first-touch page faults on all of its weights again
// (ResNet50's checkpoint: 27 ms per read instead of 8 ms). Separate allocations of a few MiB
// stay in malloc's heap between loads and are reused.
#pragma once

#include <pybind11/numpy.h>

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace weightio::bindings {
// (Internal to each binding unit, like the pybind11 objects it holds.)
namespace {

class OutputBuffers {
 public:
  static constexpr size_t kSharedOutputLimit = size_t{1} << 16;

  // Pass 1: announce each output that `place` will be asked for, in the same order.
  void plan(size_t nbytes) {
    if (nbytes < kSharedOutputLimit) slab_bytes_ += align_up(nbytes);
  }

  // Pass 2: 64-byte aligned memory for an output of `nbytes` and the array that owns it
  // (the shared slab or the output's own allocation), which the returned array must keep
  // alive as its base.
  struct Place {
    uint8_t* data;
    pybind11::object owner;
  };
  Place place(size_t nbytes) {
    if (nbytes >= kSharedOutputLimit) {
      pybind11::array own = allocate(nbytes);
      return {align64(own.mutable_data()), std::move(own)};
    }
    if (!slab_) {
      pybind11::array slab = allocate(slab_bytes_);
      slab_at_ = align64(slab.mutable_data());
      slab_ = std::move(slab);
    }
    uint8_t* at = slab_at_;
    slab_at_ += align_up(nbytes);
    return {at, slab_};
  }

 private:
  static size_t align_up(size_t n) { return (n + 63) & ~size_t{63}; }
  static uint8_t* align64(void* p) {
    return reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(p) + 63) & ~uintptr_t{63});
  }
  static pybind11::array allocate(size_t nbytes) {
    return pybind11::array(pybind11::dtype("uint8"), std::vector<pybind11::ssize_t>{static_cast<pybind11::ssize_t>(nbytes + 64)});
  }

  size_t slab_bytes_ = 0;
  pybind11::object slab_;  // null until the first small output is placed
  uint8_t* slab_at_ = nullptr;
};

}  // namespace
}  // namespace weightio::bindings
