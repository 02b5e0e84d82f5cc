// A hash map from file addresses to small trivially copyable values (pointers, flags):
// open addressing with linear probing in one array, so a lookup is a probe or two and an
// insert allocates only when the table doubles. Nothing is ever erased.
#pragma once
#include <chrono>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <vector>

namespace weightio::hdf5 {

template <class V>
class AddressMap {
  static_assert(std::is_trivially_copyable_v<V>);

 public:
  explicit AddressMap(size_t expected = 0)
      : seed_(mix(reinterpret_cast<uintptr_t>(this) ^
                  static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()))) {
    size_t n = 16;
    while (n < expected + expected / 2) n *= 2;
    slots_.assign(n, Slot{kEmpty, V{}});
  }

  size_t size() const { return size_ + (has_empty_key_ ? 1 : 0); }

  V* find(uint64_t key) {
    if (key == kEmpty) return has_empty_key_ ? &empty_key_value_ : nullptr;
    for (size_t i = hash(key) & mask();; i = (i + 1) & mask()) {
      if (slots_[i].key == key) return &slots_[i].value;
      if (slots_[i].key == kEmpty) return nullptr;
    }
  }

  // Inserts `value` unless `key` is present; returns the stored value and whether it was new.
  std::pair<V*, bool> insert(uint64_t key, V value) {
    if (key == kEmpty) {
      bool inserted = !has_empty_key_;
      if (inserted) empty_key_value_ = value, has_empty_key_ = true;
      return {&empty_key_value_, inserted};
    }
    if (2 * (size_ + 1) > slots_.size()) grow();  // at most half full
    for (size_t i = hash(key) & mask();; i = (i + 1) & mask()) {
      if (slots_[i].key == key) return {&slots_[i].value, false};
      if (slots_[i].key == kEmpty) {
        slots_[i] = Slot{key, value};
        ++size_;
        return {&slots_[i].value, true};
      }
    }
  }

 private:
  // The undefined address marks empty slots; a map that is asked to hold it keeps it aside.
  static constexpr uint64_t kEmpty = UINT64_MAX;
  struct Slot {
    uint64_t key;
    V value;
  };

  size_t mask() const { return slots_.size() - 1; }
  // Addresses are multiples of small powers of two and often close together: mix the bits.
  static uint64_t mix(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;
    return k;
  }
  // Hardening: seeded per map, so a hostile file cannot choose header addresses that pile
  // up in one run of slots (linear probing would turn that into quadratic time).
  size_t hash(uint64_t k) const { return static_cast<size_t>(mix(k ^ seed_)); }
  void grow() {
    std::vector<Slot> old(2 * slots_.size(), Slot{kEmpty, V{}});
    old.swap(slots_);
    for (const Slot& s : old) {
      if (s.key == kEmpty) continue;
      size_t i = hash(s.key) & mask();
      while (slots_[i].key != kEmpty) i = (i + 1) & mask();
      slots_[i] = s;
    }
  }

  uint64_t seed_;
  std::vector<Slot> slots_;
  size_t size_ = 0;
  bool has_empty_key_ = false;
  V empty_key_value_{};
};

}  // namespace weightio::hdf5
