// The facade over one HDF5 file: superblock, object headers (cached), groups, attributes
// and datasets, addressed by object header address; path lookup follows hard and soft links.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hdf5/address_map.h"
#include "hdf5/dataset.h"
#include "hdf5/global_heap.h"
#include "hdf5/messages/attribute.h"
#include "hdf5/messages/link.h"
#include "hdf5/object_header.h"
#include "hdf5/superblock.h"
#include "io/arena.h"
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
// (Stored in the File's arena.)
struct GroupLinks {
  io::Span<const Link> links;
  io::Span<const uint32_t> by_name;  // empty when `links` itself is in name order
  const Link* find(std::string_view name) const;
  const Link& in_name_order(size_t i) const { return by_name.empty() ? links[i] : links[by_name[i]]; }
};

struct WalkEntry {
  size_t path_offset, path_size;  // in Walk::paths, after the '/' that precedes the path
  ObjectKind kind;
  uint64_t address;
};

// What File::walk finds. The paths share one buffer: no string per object.
struct Walk {
  std::string paths;  // "/a/a/b/c..."; every entry's path is preceded by a '/'
  std::vector<WalkEntry> entries;
  // Relative to the walk's start, like h5py's visititems ("a/b").
  std::string_view path(const WalkEntry& e) const { return std::string_view(paths).substr(e.path_offset, e.path_size); }
  // The same with a leading '/' ("/a/b"), as load_file's keys are.
  std::string_view slash_path(const WalkEntry& e) const {
    return std::string_view(paths).substr(e.path_offset - 1, e.path_size + 1);
  }
};

class File {
 public:
  explicit File(std::shared_ptr<const io::MappedFile> map);

  const std::string& path() const { return map_->path(); }
  const Superblock& superblock() const { return superblock_; }
  const Context& context() const { return ctx_; }
  const io::MappedFile& mapping() const { return *map_; }
  uint64_t root() const { return superblock_.root_object_header; }

  // Decoded objects are cached for the life of the File (in its arena): the references
  // these return stay valid as long as the File does.
  const ObjectHeader& header(uint64_t address) const;
  ObjectKind kind(uint64_t address) const;
  const GroupLinks& links(uint64_t group) const;
  std::vector<Attribute> attributes(uint64_t object) const;
  const Dataset& dataset(uint64_t address) const;
  // Keras stores bfloat16 as 2-byte opaque data with a string attribute dtype="bfloat16".
  bool is_tagged_bfloat16(uint64_t dataset) const;

  // One link of a group by name, not followed; NotFoundError if absent.
  Link link(uint64_t group, std::string_view name) const;
  // Address of the object at `path` (absolute from the root, or relative to `start`),
  // following hard and soft links; external links raise UnsupportedFeatureError.
  uint64_t resolve(uint64_t start, const std::string& path) const;
  // Like resolve, but nullopt where a link on the way is missing or an object on the way is
  // not a group (other problems still raise): asking for paths that are not there is common
  // (Group.__contains__), and an exception per miss costs more than the lookup.
  std::optional<uint64_t> find(uint64_t start, const std::string& path) const;
  // Every object below `start` once (first path in iteration order), soft links not followed.
  // (Parsing headers in parallel level by level was measured slower: the work per header is
  // a few hundred nanoseconds, less than the cost of sharing the caches between threads.)
  Walk walk(uint64_t start) const;

 private:
  // Everything decoded about one object, parts filled in when first asked for.
  struct Object {
    ObjectHeader header;
    ObjectKind kind;
    const GroupLinks* links;
    const Dataset* dataset;
  };
  // These run with mutex_ held.
  Object& object_locked(uint64_t address) const;
  const GroupLinks& links_locked(Object& o) const;
  void walk_locked(uint64_t group, size_t prefix_offset, size_t prefix_size, int depth, AddressMap<bool>& seen,
                   LocalBudget& budget, Walk& out) const;

  // nullopt (only when `missing_ok`) where resolve would raise NotFoundError for a missing
  // link or a non-group on the way.
  std::optional<uint64_t> resolve_from(uint64_t start, std::string_view path, int& hops, bool missing_ok) const;
  Attribute decode_attribute(const AttributeMessage& m) const;

  std::shared_ptr<const io::MappedFile> map_;
  Context ctx_;
  Superblock superblock_;
  mutable GlobalHeap global_heap_;
  // The caches: decoded metadata in an arena (charged to the context's budget per block,
  // released at once with the File) and an index by header address, all under mutex_.
  mutable std::mutex mutex_;
  mutable io::Arena arena_;
  mutable AddressMap<Object*> objects_;
  mutable std::vector<RawMessage> message_scratch_;  // reused while parsing headers
  mutable std::vector<Link> link_scratch_;           // and link tables
};

}  // namespace weightio::hdf5
