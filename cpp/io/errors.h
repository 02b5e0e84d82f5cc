// The C++ core's error hierarchy. cpp/bindings maps each class onto the Python
// exception of the same meaning (weightio.FormatError, ...), in one translator.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>

namespace weightio {

// Root of every error the core throws on purpose.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The bytes contradict the format: truncated, out of bounds, bad signature, a cycle.
class FormatError : public Error {
 public:
  FormatError(const std::string& what, uint64_t offset)
      : Error(what + " (at byte offset " + std::to_string(offset) + ")"), offset_(offset) {}
  explicit FormatError(const std::string& what) : Error(what), offset_(UINT64_MAX) {}
  uint64_t offset() const { return offset_; }

 private:
  uint64_t offset_;
};

// A stored checksum does not match the bytes it covers.
class ChecksumError : public FormatError {
 public:
  using FormatError::FormatError;
};

// Valid HDF5 that this reader does not implement (the Python layer may fall back to h5py).
class UnsupportedFeatureError : public Error {
 public:
  using Error::Error;
};

// A path or name that does not exist.
class NotFoundError : public Error {
 public:
  using Error::Error;
};

// The operating system refused (open, stat, mmap); carries errno.
class IoError : public Error {
 public:
  IoError(const std::string& what, int err) : Error(what), errno_(err) {}
  int error_number() const { return errno_; }

 private:
  int errno_;
};

}  // namespace weightio
