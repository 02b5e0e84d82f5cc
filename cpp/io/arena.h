// A monotonic ("bump") arena: many small allocations carved out of a few large blocks,
// all released at once when the arena dies. The metadata a File decodes (object headers,
// link tables, dataset descriptions) lives as long as the File, so freeing it piece by
// piece only cost time: tens of thousands of malloc/free pairs for a large model.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <new>
#include <string_view>
#include <type_traits>
#include <utility>

#include "io/span.h"

#if defined(__SANITIZE_ADDRESS__)
#define WEIGHTIO_ARENA_PER_ALLOCATION 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WEIGHTIO_ARENA_PER_ALLOCATION 1
#endif
#endif

namespace weightio::io {

// Under AddressSanitizer every allocation gets a block of its own, so an overflow from one
// object into the next is still reported (fuzz builds).
class Arena {
 public:
  // `on_block(bytes)` runs before every block the arena takes from the system and may throw
  // to refuse it: the owner's memory budget (a hostile file must not grow an arena freely).
  explicit Arena(std::function<void(size_t)> on_block = {}) : on_block_(std::move(on_block)) {}
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;
  ~Arena() {
    for (Finalizer* f = finalizers_; f; f = f->next) f->destroy(f->object);
    while (blocks_) {
      Block* next = blocks_->next;
      std::free(blocks_);
      blocks_ = next;
    }
  }

  // `align` is a power of two no larger than alignof(std::max_align_t).
  void* allocate(size_t size, size_t align) {
#ifdef WEIGHTIO_ARENA_PER_ALLOCATION
    (void)align;
    return dedicated(size);
#endif
    if (size > kMaxBlock / 4) return dedicated(size);
    uintptr_t at = align_up(cur_, align);
    if (cur_ == nullptr || at > reinterpret_cast<uintptr_t>(end_) || size > reinterpret_cast<uintptr_t>(end_) - at) {
      new_block();
      at = align_up(cur_, align);
    }
    cur_ = reinterpret_cast<uint8_t*>(at + size);
    return reinterpret_cast<void*>(at);
  }

  // An object living as long as the arena. Its destructor runs when the arena dies unless
  // it is trivial; if the constructor throws, its space is given back.
  template <class T, class... Args>
  T* make(Args&&... args) {
    uint8_t* mark = cur_;
    Block* block = blocks_;
    void* p = allocate(sizeof(T), alignof(T));
    T* obj;
    try {
      obj = new (p) T(std::forward<Args>(args)...);
    } catch (...) {
      if (blocks_ == block) cur_ = mark;  // nothing else was carved out since
      throw;
    }
    if constexpr (!std::is_trivially_destructible_v<T>) {
      void* f = allocate(sizeof(Finalizer), alignof(Finalizer));
      finalizers_ = new (f) Finalizer{finalizers_, [](void* o) { static_cast<T*>(o)->~T(); }, obj};
    }
    return obj;
  }

  // A copy of `n` trivially copyable elements.
  template <class T>
  Span<const T> copy(const T* data, size_t n) {
    static_assert(std::is_trivially_copyable_v<T> && std::is_trivially_destructible_v<T>);
    if (n == 0) return {};
    T* p = static_cast<T*>(allocate(sizeof(T) * n, alignof(T)));
    std::memcpy(static_cast<void*>(p), data, sizeof(T) * n);
    return Span<const T>(p, n);
  }
  // Room for `n` elements of a trivially destructible type, not yet constructed (the caller
  // constructs them in place).
  template <class T>
  T* array(size_t n) {
    static_assert(std::is_trivially_destructible_v<T>);
    return n == 0 ? nullptr : static_cast<T*>(allocate(sizeof(T) * n, alignof(T)));
  }
  std::string_view copy(std::string_view s) {
    if (s.empty()) return {};
    char* p = static_cast<char*>(allocate(s.size(), 1));
    std::memcpy(p, s.data(), s.size());
    return std::string_view(p, s.size());
  }

  // Bytes taken from the system so far.
  size_t reserved() const { return reserved_; }

 private:
  struct Block {
    Block* next;
  };
  struct Finalizer {
    Finalizer* next;
    void (*destroy)(void*);
    void* object;
  };
  // Blocks double from 16 KiB to 64 KiB; a request larger than a quarter of that gets a
  // block of its own, so the tail of the current block is not wasted on it. (256 KiB blocks
  // were slower: above malloc's mmap threshold, every File faulted its blocks in anew.)
  static constexpr size_t kFirstBlock = size_t{16} << 10;
  static constexpr size_t kMaxBlock = size_t{64} << 10;
  // Block headers keep the bytes after them aligned for any fundamental type.
  static constexpr size_t kHeader = alignof(std::max_align_t) > sizeof(Block) ? alignof(std::max_align_t) : sizeof(Block);

  static uintptr_t align_up(const uint8_t* p, size_t align) {
    return (reinterpret_cast<uintptr_t>(p) + (align - 1)) & ~uintptr_t{align - 1};
  }

  uint8_t* take_block(size_t size) {
    if (size > SIZE_MAX - kHeader) throw std::bad_alloc();
    size += kHeader;
    if (on_block_) on_block_(size);
    void* raw = std::malloc(size);
    if (!raw) throw std::bad_alloc();
    blocks_ = new (raw) Block{blocks_};
    reserved_ += size;
    return static_cast<uint8_t*>(raw) + kHeader;
  }
  void new_block() {
    cur_ = take_block(next_block_ - kHeader);
    end_ = cur_ + (next_block_ - kHeader);
    if (next_block_ < kMaxBlock) next_block_ *= 2;
  }
  void* dedicated(size_t size) { return take_block(size); }

  std::function<void(size_t)> on_block_;
  Block* blocks_ = nullptr;
  Finalizer* finalizers_ = nullptr;
  uint8_t* cur_ = nullptr;
  uint8_t* end_ = nullptr;
  size_t next_block_ = kFirstBlock;
  size_t reserved_ = 0;
};

}  // namespace weightio::io
