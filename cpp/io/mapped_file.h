// A read-only file mapping (RAII). Falls back to reading the whole file into memory
// where mmap is not possible (e.g. a pipe or a file system without mmap support).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "io/span.h"

namespace weightio::io {

// Which file was opened, from the fstat of the descriptor that was mapped: a file whose
// identity is unchanged (same device, inode, size, modification and status-change times) has
// not been written since.
struct FileIdentity {
  uint64_t device = 0;
  uint64_t inode = 0;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
};

class MappedFile {
 public:
  explicit MappedFile(const std::string& path);
  // Wraps bytes already in memory (tests, fuzzing, zip members handed in by Python).
  MappedFile(const uint8_t* data, size_t size, std::shared_ptr<void> owner);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  ByteSpan bytes() const { return ByteSpan(data_, size_); }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  bool is_mapped() const { return mapped_; }
  // Set for regular files opened by path; absent for bytes handed in and other file types.
  const std::optional<FileIdentity>& identity() const { return identity_; }

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  bool mapped_ = false;
  std::optional<FileIdentity> identity_;
  std::vector<uint8_t> fallback_;
  std::shared_ptr<void> owner_;
};

}  // namespace weightio::io
