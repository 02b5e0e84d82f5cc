#include "hdf5/file.h"

#include <algorithm>
#include <functional>
#include <set>
#include <unordered_set>

#include "hdf5/attributes.h"
#include "hdf5/group.h"

namespace weightio::hdf5 {

namespace {
std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> parts;
  size_t i = 0;
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    if (j > i) {
      std::string part = path.substr(i, j - i);
      if (part != ".") parts.push_back(part);
    }
    i = j + 1;
  }
  return parts;
}
}  // namespace

File::File(std::shared_ptr<const io::MappedFile> map)
    : map_(std::move(map)), ctx_(map_->bytes(), map_->path()), global_heap_(ctx_) {
  superblock_ = read_superblock(ctx_);
}

std::shared_ptr<const ObjectHeader> File::header(uint64_t address) const {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = headers_.find(address);
    if (it != headers_.end()) return it->second;
  }
  auto h = std::make_shared<const ObjectHeader>(read_object_header(ctx_, address));
  // Hardening: cached for the life of the file; see Context::charge.
  uint64_t decoded = sizeof(ObjectHeader);
  for (const RawMessage& m : h->messages) decoded += sizeof(RawMessage) + m.data.size();
  ctx_.charge(decoded, "object headers");
  std::lock_guard<std::mutex> lock(mutex_);
  return headers_.emplace(address, std::move(h)).first->second;
}

ObjectKind File::kind(uint64_t address) const {
  auto h = header(address);
  if (is_dataset(*h)) return ObjectKind::kDataset;
  if (is_group(*h) || address == root()) return ObjectKind::kGroup;
  if (h->find(kMsgDatatype)) return ObjectKind::kDatatype;
  return ObjectKind::kGroup;  // an empty new-style group may carry nothing we recognise
}

const Link* GroupLinks::find(const std::string& name) const {
  if (by_name.empty()) {
    auto it = std::lower_bound(links.begin(), links.end(), name, [](const Link& l, const std::string& n) { return l.name < n; });
    return it != links.end() && it->name == name ? &*it : nullptr;
  }
  auto it = std::lower_bound(by_name.begin(), by_name.end(), name,
                             [&](uint32_t i, const std::string& n) { return links[i].name < n; });
  return it != by_name.end() && links[*it].name == name ? &links[*it] : nullptr;
}

std::shared_ptr<const GroupLinks> File::links(uint64_t group) const {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = links_.find(group);
    if (it != links_.end()) return it->second;
  }
  auto h = header(group);
  auto found = std::make_shared<GroupLinks>();
  found->links = read_links(ctx_, *h);
  const auto& ls = found->links;
  bool sorted = std::is_sorted(ls.begin(), ls.end(), [](const Link& a, const Link& b) { return a.name < b.name; });
  if (!sorted) {
    found->by_name.resize(ls.size());
    for (uint32_t i = 0; i < ls.size(); ++i) found->by_name[i] = i;
    std::sort(found->by_name.begin(), found->by_name.end(), [&](uint32_t a, uint32_t b) { return ls[a].name < ls[b].name; });
  }
  std::lock_guard<std::mutex> lock(mutex_);
  return links_.emplace(group, std::move(found)).first->second;
}

Link File::link(uint64_t group, const std::string& name) const {
  auto ls = links(group);
  const Link* l = ls->find(name);
  if (!l) throw NotFoundError("no object named '" + name + "'");
  return *l;
}

uint64_t File::resolve(uint64_t start, const std::string& path) const {
  int hops = 0;
  return resolve_from(start, path, hops);
}

uint64_t File::resolve_from(uint64_t start, const std::string& path, int& hops) const {
  uint64_t at = !path.empty() && path[0] == '/' ? root() : start;
  std::vector<std::string> parts = split_path(path);
  std::vector<uint64_t> parents;  // for ".." in soft link targets
  for (const std::string& part : parts) {
    if (part == "..") {
      if (parents.empty()) throw NotFoundError("path '" + path + "' climbs above its start");
      at = parents.back();
      parents.pop_back();
      continue;
    }
    if (kind(at) != ObjectKind::kGroup) throw NotFoundError("'" + part + "' is looked up in an object that is not a group");
    Link l = link(at, part);
    parents.push_back(at);
    switch (l.type) {
      case Link::Type::kHard:
        at = l.address;
        break;
      case Link::Type::kSoft:
        if (++hops > limits::kMaxLinkHops) throw FormatError("too many soft links (a cycle?) resolving '" + path + "'");
        at = resolve_from(at, l.target, hops);
        break;
      case Link::Type::kExternal:
        throw UnsupportedFeatureError("external link '" + part + "' to '" + l.external_file + ":" + l.target + "'");
    }
  }
  return at;
}

std::vector<WalkEntry> File::walk(uint64_t start) const {
  std::vector<WalkEntry> out;
  std::unordered_set<uint64_t> seen{start};
  std::function<void(uint64_t, const std::string&, int)> visit = [&](uint64_t group, const std::string& prefix, int depth) {
    if (depth > limits::kMaxGroupDepth) throw FormatError("groups nest too deep");
    // Like h5py (H5Ovisit by name), always in name order, even in creation-ordered groups.
    auto ls = links(group);
    for (size_t i = 0; i < ls->links.size(); ++i) {
      const Link& l = ls->by_name.empty() ? ls->links[i] : ls->links[ls->by_name[i]];
      if (l.type != Link::Type::kHard) continue;
      if (!seen.insert(l.address).second) continue;
      std::string path = prefix.empty() ? l.name : prefix + "/" + l.name;
      ObjectKind k = kind(l.address);
      out.push_back(WalkEntry{path, k, l.address});
      if (k == ObjectKind::kGroup) visit(l.address, path, depth + 1);
    }
  };
  visit(start, "", 0);
  return out;
}

std::vector<Attribute> File::attributes(uint64_t object) const {
  auto h = header(object);
  std::vector<Attribute> out;
  LocalBudget budget(ctx_);  // hardening: vlen strings may all name one big heap object
  for (const AttributeMessage& m : read_attributes(ctx_, *h)) {
    out.push_back(decode_attribute(m));
    uint64_t decoded = out.back().raw.size();
    for (const std::string& s : out.back().strings) decoded += s.size() + sizeof(std::string);
    budget.take(decoded, "attribute values");
  }
  return out;
}

Attribute File::decode_attribute(const AttributeMessage& m) const {
  Attribute a;
  a.name = m.name;
  a.type = m.type;
  a.space = m.space;
  if (m.type.cls == DataType::Class::kVariableLength && m.type.vlen_string) {
    a.vlen_string = true;
    io::Cursor c(m.data, m.data_offset);
    uint64_t n = m.space.num_elements();
    LocalBudget budget(ctx_);  // hardening: every element may name the same big heap object
    for (uint64_t i = 0; i < n; ++i) {
      uint32_t length = c.u32();
      uint64_t collection = ctx_.read_offset(c);
      uint32_t index = c.u32();
      if (length == 0 || collection == io::kUndefinedAddress || collection == 0) {
        a.strings.emplace_back();
        continue;
      }
      io::ByteSpan obj = global_heap_.object(collection, index);
      if (obj.size() < length) throw FormatError("variable-length string longer than its heap object", m.data_offset);
      budget.take(length, "variable-length strings");
      a.strings.emplace_back(reinterpret_cast<const char*>(obj.data()), length);
    }
    return a;
  }
  if (m.type.numpy_typestr().empty())
    throw UnsupportedFeatureError("attribute '" + m.name + "' has a " + m.type.describe() + " datatype");
  a.raw.assign(m.data.data(), m.data.data() + m.data.size());
  if (m.type.cls == DataType::Class::kString && m.type.size > 0)
    normalize_fixed_strings(a.raw.data(), a.raw.size() / m.type.size, m.type.size, m.type.string_pad);
  return a;
}

std::shared_ptr<const Dataset> File::dataset(uint64_t address) const {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = datasets_.find(address);
    if (it != datasets_.end()) return it->second;
  }
  auto h = header(address);
  if (!is_dataset(*h)) throw Error("object is not a dataset");
  auto d = std::make_shared<const Dataset>(ctx_, *h);
  std::lock_guard<std::mutex> lock(mutex_);
  return datasets_.emplace(address, std::move(d)).first->second;
}

}  // namespace weightio::hdf5

namespace weightio::hdf5 {

bool File::is_tagged_bfloat16(uint64_t address) const {
  auto ds = dataset(address);
  if (ds->type().cls != DataType::Class::kOpaque || ds->type().size != 2) return false;
  for (const Attribute& a : attributes(address)) {
    if (a.name != "dtype" || a.space.num_elements() != 1) continue;
    std::string value = a.vlen_string ? (a.strings.empty() ? "" : a.strings[0])
                                      : std::string(a.raw.begin(), a.raw.end());
    return value.compare(0, 8, "bfloat16") == 0 && value.find_first_not_of('\0', 8) == std::string::npos;
  }
  return false;
}

}  // namespace weightio::hdf5
