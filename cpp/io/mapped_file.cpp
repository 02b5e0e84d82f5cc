#include "io/mapped_file.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/errors.h"

namespace weightio::io {

namespace {
[[noreturn]] void throw_os(const std::string& what, const std::string& path) {
  int err = errno;
  throw IoError(what + " '" + path + "': " + std::strerror(err), err);
}

struct FdCloser {
  int fd;
  ~FdCloser() {
    if (fd >= 0) ::close(fd);
  }
};
}  // namespace

MappedFile::MappedFile(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw_os("cannot open", path);
  FdCloser closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw_os("cannot stat", path);
  if (S_ISDIR(st.st_mode)) {
    errno = EISDIR;
    throw_os("cannot open", path);
  }
  size_ = static_cast<size_t>(st.st_size);
  if (S_ISREG(st.st_mode)) {
#ifdef __APPLE__
    const struct timespec &mtime = st.st_mtimespec, &ctime = st.st_ctimespec;
#else
    const struct timespec &mtime = st.st_mtim, &ctime = st.st_ctim;
#endif
    constexpr int64_t kNs = 1000000000;
    identity_ = FileIdentity{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino),
                             static_cast<uint64_t>(st.st_size),
                             static_cast<int64_t>(mtime.tv_sec) * kNs + mtime.tv_nsec,
                             static_cast<int64_t>(ctime.tv_sec) * kNs + ctime.tv_nsec};
  }
  if (size_ == 0) {
    data_ = nullptr;
    return;
  }
  if (S_ISREG(st.st_mode)) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p != MAP_FAILED) {
      data_ = static_cast<const uint8_t*>(p);
      mapped_ = true;
      if (size_ >= kPreadMin) std::swap(fd_, closer.fd);  // kept for copy_out
      return;
    }
  }
  // Not mappable: read it (pread loop, bounded by the size fstat reported).
  fallback_.resize(size_);
  size_t done = 0;
  while (done < size_) {
    ssize_t n = ::pread(fd, fallback_.data() + done, size_ - done, static_cast<off_t>(done));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_os("cannot read", path);
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  fallback_.resize(done);
  size_ = done;
  data_ = fallback_.data();
}

MappedFile::MappedFile(const uint8_t* data, size_t size, std::shared_ptr<void> owner)
    : path_("<memory>"), data_(data), size_(size), owner_(std::move(owner)) {}

MappedFile::~MappedFile() {
  if (mapped_ && data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
  if (fd_ >= 0) ::close(fd_);
}

void MappedFile::copy_out(const uint8_t* src, size_t n, uint8_t* dst) const {
  if (n == 0) return;
  if (fd_ < 0 || n < kPreadMin || n > size_ || src < data_ || static_cast<size_t>(src - data_) > size_ - n) {
    std::memcpy(dst, src, n);
    return;
  }
  size_t done = 0;
  const size_t offset = static_cast<size_t>(src - data_);
  while (done < n) {
    ssize_t got = ::pread(fd_, dst + done, n - done, static_cast<off_t>(offset + done));
    if (got < 0) {
      if (errno == EINTR) continue;
      throw_os("cannot read", path_);
    }
    if (got == 0) {
      throw IoError("file '" + path_ + "' became shorter while being read (" + std::to_string(offset + done) +
                        " of the " + std::to_string(size_) + " bytes mapped)",
                    0);
    }
    done += static_cast<size_t>(got);
  }
}

}  // namespace weightio::io
