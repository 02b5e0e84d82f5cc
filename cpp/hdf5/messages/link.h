// Link message 0x0006 and Link Info message 0x0002 (HDF5 spec 3.0, IV.A.2.g and IV.A.2.c).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "hdf5/context.h"

namespace weightio::hdf5 {

// The strings are views into the file's bytes (link messages, heaps): valid while its
// mapping is, which a File keeps as long as it lives.
struct Link {
  enum class Type { kHard = 0, kSoft = 1, kExternal = 64 };
  std::string_view name;
  Type type = Type::kHard;
  uint64_t address = io::kUndefinedAddress;  // hard
  std::string_view target;                   // soft: path; external: object path
  std::string_view external_file;            // external
  bool has_creation_order = false;
  uint64_t creation_order = 0;
};

Link parse_link(const Context& ctx, io::Cursor c);

// Shared by the Link Info and Attribute Info messages: where dense storage lives.
struct DenseStorageInfo {
  bool creation_order_tracked = false;
  bool creation_order_indexed = false;
  uint64_t heap_address = io::kUndefinedAddress;         // fractal heap
  uint64_t name_index_address = io::kUndefinedAddress;   // v2 B-tree by name hash
  uint64_t order_index_address = io::kUndefinedAddress;  // v2 B-tree by creation order
  bool dense() const { return heap_address != io::kUndefinedAddress; }
};

// The Link Info and Attribute Info messages share this layout; they differ in the width of
// the maximum creation index (8 and 2 bytes).
DenseStorageInfo parse_dense_storage_info(const Context& ctx, io::Cursor c, unsigned max_index_size, const char* what);
DenseStorageInfo parse_link_info(const Context& ctx, io::Cursor c);

}  // namespace weightio::hdf5
