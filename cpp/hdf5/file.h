// The facade over one HDF5 file: superblock, object headers (cached), groups, attributes
// and datasets, addressed by object header address; path lookup follows hard and soft links.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "hdf5/dataset.h"
#include "hdf5/global_heap.h"
#include "hdf5/messages/attribute.h"
#include "hdf5/messages/link.h"
#include "hdf5/object_header.h"
#include "hdf5/superblock.h"
#include "io/mapped_file.h"

namespace weightio::hdf5 {

enum class ObjectKind { kGroup, kDataset, kDatatype };

// An attribute with its value decoded: raw element bytes for fixed-size types, or the
// strings of a variable-length string attribute.
struct Attribute {
  std::string name;
  DataType type;
  Dataspace space;
  bool vlen_string = false;
  std::vector<uint8_t> raw;
  std::vector<std::string> strings;
};

// The links of one group in iteration order, with positions sorted by name for lookup.
struct GroupLinks {
  std::vector<Link> links;
  std::vector<uint32_t> by_name;  // empty when `links` itself is in name order
  const Link* find(const std::string& name) const;
};

struct WalkEntry {
  std::string path;  // relative to the walk's start, like h5py's visititems
  ObjectKind kind;
  uint64_t address;
};

class File {
 public:
  explicit File(std::shared_ptr<const io::MappedFile> map);

  const std::string& path() const { return map_->path(); }
  const Superblock& superblock() const { return superblock_; }
  const Context& context() const { return ctx_; }
  const io::MappedFile& mapping() const { return *map_; }
  uint64_t root() const { return superblock_.root_object_header; }

  std::shared_ptr<const ObjectHeader> header(uint64_t address) const;
  ObjectKind kind(uint64_t address) const;
  std::shared_ptr<const GroupLinks> links(uint64_t group) const;
  std::vector<Attribute> attributes(uint64_t object) const;
  std::shared_ptr<const Dataset> dataset(uint64_t address) const;
  // Keras stores bfloat16 as 2-byte opaque data with a string attribute dtype="bfloat16".
  bool is_tagged_bfloat16(uint64_t dataset) const;

  // One link of a group by name, not followed; NotFoundError if absent.
  Link link(uint64_t group, const std::string& name) const;
  // Address of the object at `path` (absolute from the root, or relative to `start`),
  // following hard and soft links; external links raise UnsupportedFeatureError.
  uint64_t resolve(uint64_t start, const std::string& path) const;
  // Every object below `start` once (first path in iteration order), soft links not followed.
  // (Parsing headers in parallel level by level was measured slower: the work per header is
  // a few hundred nanoseconds, less than the cost of sharing the caches between threads.)
  std::vector<WalkEntry> walk(uint64_t start) const;

 private:
  uint64_t resolve_from(uint64_t start, const std::string& path, int& hops) const;
  Attribute decode_attribute(const AttributeMessage& m) const;

  std::shared_ptr<const io::MappedFile> map_;
  Context ctx_;
  Superblock superblock_;
  mutable GlobalHeap global_heap_;
  mutable std::mutex mutex_;
  mutable std::unordered_map<uint64_t, std::shared_ptr<const ObjectHeader>> headers_;
  mutable std::unordered_map<uint64_t, std::shared_ptr<const Dataset>> datasets_;
  mutable std::unordered_map<uint64_t, std::shared_ptr<const GroupLinks>> links_;
};

}  // namespace weightio::hdf5
