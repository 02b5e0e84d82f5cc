#include "hdf5/tree_digest.h"

#include <cstring>
#include <string_view>

#include "hdf5/context.h"

namespace weightio::hdf5 {
namespace {

// Every field is fixed-size or length-prefixed, so equal digests mean equal fields.
class Writer {
 public:
  Writer(std::string& out, LocalBudget& budget) : out_(out), budget_(budget) {}
  void u64(uint64_t v) {
    char b[8];
    std::memcpy(b, &v, 8);
    append(b, 8);
  }
  void bytes(std::string_view s) {
    u64(s.size());
    append(s.data(), s.size());
  }
  void dims(const std::vector<uint64_t>& d) {
    u64(d.size());
    for (uint64_t x : d) u64(x);
  }

 private:
  void append(const char* p, size_t n) {
    budget_.take(n, "layout digest");  // hardening: bounded like any other decoded value
    out_.append(p, n);
  }
  std::string& out_;
  LocalBudget& budget_;
};

constexpr uint64_t kBombFloor = uint64_t{1} << 32;

void describe_attributes(const File& file, uint64_t object, Writer& w) {
  std::vector<Attribute> attrs = file.attributes(object);
  w.u64(attrs.size());
  for (const Attribute& a : attrs) {
    w.bytes(a.name);
    w.u64(static_cast<uint64_t>(a.space.kind));
    w.dims(a.space.dims);
    w.u64(a.vlen_string ? 1 : 0);
    w.u64(a.type.charset);
    w.bytes(a.type.numpy_typestr());
    if (a.vlen_string) {
      w.u64(a.strings.size());
      for (const std::string& s : a.strings) w.bytes(s);
    } else {
      w.bytes(std::string_view(reinterpret_cast<const char*>(a.raw.data()), a.raw.size()));
    }
  }
}

void describe_dataset(const File& file, uint64_t address, Writer& w) {
  const Dataset& ds = file.dataset(address);
  w.u64(static_cast<uint64_t>(ds.space().kind));
  w.dims(ds.space().dims);
  w.bytes(ds.type().numpy_typestr());
  w.u64(file.is_tagged_bfloat16(address) ? 1 : 0);
  uint64_t n = ds.num_elements(), size = ds.type().size;
  bool large = size != 0 && n > kBombFloor / size;  // declared bytes > 4 GiB, without overflow
  uint64_t stored = 0;
  if (large) {
    try {
      stored = ds.storage_size();
    } catch (const Error&) {
      stored = 0;  // as the loaders' check: an unknown size counts as nothing stored
    }
  }
  w.u64(stored);
}

}  // namespace

TreeDigest digest_tree(const File& file, uint64_t start) {
  TreeDigest out;
  out.walk = file.walk(start);
  LocalBudget budget(file.context());
  Writer w(out.digest, budget);
  w.u64(static_cast<uint64_t>(file.kind(start)));
  if (file.kind(start) == ObjectKind::kGroup) describe_attributes(file, start, w);
  for (const WalkEntry& e : out.walk.entries) {
    w.u64(static_cast<uint64_t>(e.kind));
    w.bytes(out.walk.path(e));
    if (e.kind == ObjectKind::kGroup) {
      describe_attributes(file, e.address, w);
    } else if (e.kind == ObjectKind::kDataset) {
      describe_dataset(file, e.address, w);
      out.datasets.push_back(e.address);
    }
  }
  return out;
}

}  // namespace weightio::hdf5
