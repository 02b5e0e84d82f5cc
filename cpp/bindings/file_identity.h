// A file's identity (io::FileIdentity) as Python sees it, shared by the binding units.
#pragma once
#include <pybind11/pybind11.h>

#include <optional>

#include "io/mapped_file.h"

namespace weightio::bindings {
// (Internal to each binding unit, like the pybind11 objects it makes.)
namespace {

// (device, inode, size, mtime_ns, ctime_ns), or None (bytes handed in, not a regular file).
inline pybind11::object identity_tuple(const std::optional<io::FileIdentity>& id) {
  if (!id) return pybind11::none();
  return pybind11::make_tuple(id->device, id->inode, id->size, id->mtime_ns, id->ctime_ns);
}

}  // namespace
}  // namespace weightio::bindings
