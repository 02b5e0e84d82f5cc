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

  // Copies the n bytes at src (which must lie within bytes()) to dst. Large blocks of a
  // mapped file are read with pread() instead: the kernel copies them from the page cache
  // without first mapping every page of the block into this process (a fresh mapping's page
  // faults cost more than the copy itself: ~5 ms more for 100 MB on a 2-core machine).
  // Throws IoError if the file has become shorter than when it was mapped.
  void copy_out(const uint8_t* src, size_t n, uint8_t* dst) const;
  // Blocks at least this large are read with pread().
  static constexpr size_t kPreadMin = size_t{256} << 10;

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  bool mapped_ = false;
  int fd_ = -1;  // kept open for copy_out on mapped files of kPreadMin bytes or more
  std::optional<FileIdentity> identity_;
  std::vector<uint8_t> fallback_;
  std::shared_ptr<void> owner_;
};

}  // namespace weightio::io
