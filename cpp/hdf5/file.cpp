#include "hdf5/file.h"

#include <algorithm>

#include "hdf5/attributes.h"
#include "hdf5/group.h"

namespace weightio::hdf5 {

namespace {
std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> parts;
  size_t i = 0;
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    if (j > i) {
      std::string_view part = path.substr(i, j - i);
      if (part != ".") parts.push_back(part);
    }
    i = j + 1;
  }
  return parts;
}
}  // namespace

File::File(std::shared_ptr<const io::MappedFile> map)
    : map_(std::move(map)),
      ctx_(*map_),
      global_heap_(ctx_),
      // Hardening: the arena is charged per block, on top of what the parsers charge per
      // structure, so no path through the caches allocates outside the budget.
      arena_([this](size_t n) { ctx_.charge(n, "cached metadata"); }) {
  superblock_ = read_superblock(ctx_);
}

File::Object& File::object_locked(uint64_t address) const {
  if (Object** found = objects_.find(address)) return **found;
  ObjectHeader h = read_object_header(ctx_, address, message_scratch_);
  // Hardening: cached for the life of the file; see Context::charge.
  uint64_t decoded = sizeof(ObjectHeader);
  for (const RawMessage& m : h.messages) decoded += sizeof(RawMessage) + m.data.size();
  ctx_.charge(decoded, "object headers");
  // Cached without the NIL (padding) messages, which nothing reads.
  size_t kept = 0;
  for (const RawMessage& m : h.messages) kept += m.type != kMsgNil;
  RawMessage* messages = arena_.array<RawMessage>(kept);
  kept = 0;
  for (const RawMessage& m : h.messages)
    if (m.type != kMsgNil) new (&messages[kept++]) RawMessage(m);
  h.messages = io::Span<const RawMessage>(messages, kept);
  ObjectKind kind = is_dataset(h)                          ? ObjectKind::kDataset
                    : is_group(h) || address == root()     ? ObjectKind::kGroup
                    : h.find(kMsgDatatype)                 ? ObjectKind::kDatatype
                                                           : ObjectKind::kGroup;  // an empty new-style group may carry nothing we recognise
  Object* o = arena_.make<Object>(Object{h, kind, nullptr, nullptr});
  objects_.insert(address, o);
  return *o;
}

const ObjectHeader& File::header(uint64_t address) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return object_locked(address).header;
}

ObjectKind File::kind(uint64_t address) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return object_locked(address).kind;
}

const Link* GroupLinks::find(std::string_view name) const {
  if (by_name.empty()) {
    auto it = std::lower_bound(links.begin(), links.end(), name, [](const Link& l, std::string_view n) { return l.name < n; });
    return it != links.end() && it->name == name ? &*it : nullptr;
  }
  auto it = std::lower_bound(by_name.begin(), by_name.end(), name,
                             [&](uint32_t i, std::string_view n) { return links[i].name < n; });
  return it != by_name.end() && links[*it].name == name ? &links[*it] : nullptr;
}

const GroupLinks& File::links_locked(Object& o) const {
  if (o.links) return *o.links;
  read_links(ctx_, o.header, link_scratch_);
  const std::vector<Link>& ls = link_scratch_;
  GroupLinks found;
  found.links = arena_.copy(ls.data(), ls.size());
  bool sorted = std::is_sorted(ls.begin(), ls.end(), [](const Link& a, const Link& b) { return a.name < b.name; });
  if (!sorted) {
    uint32_t* order = arena_.array<uint32_t>(ls.size());
    for (uint32_t i = 0; i < ls.size(); ++i) new (&order[i]) uint32_t(i);
    std::sort(order, order + ls.size(), [&](uint32_t a, uint32_t b) { return ls[a].name < ls[b].name; });
    found.by_name = io::Span<const uint32_t>(order, ls.size());
  }
  o.links = arena_.make<GroupLinks>(found);
  return *o.links;
}

const GroupLinks& File::links(uint64_t group) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return links_locked(object_locked(group));
}

Link File::link(uint64_t group, std::string_view name) const {
  const Link* l = links(group).find(name);
  if (!l) throw NotFoundError("no object named '" + std::string(name) + "'");
  return *l;
}

uint64_t File::resolve(uint64_t start, const std::string& path) const {
  int hops = 0;
  return *resolve_from(start, path, hops, /*missing_ok=*/false);
}

std::optional<uint64_t> File::find(uint64_t start, const std::string& path) const {
  int hops = 0;
  return resolve_from(start, path, hops, /*missing_ok=*/true);
}

std::optional<uint64_t> File::resolve_from(uint64_t start, std::string_view path, int& hops, bool missing_ok) const {
  uint64_t at = !path.empty() && path[0] == '/' ? root() : start;
  std::vector<std::string_view> parts = split_path(path);
  std::vector<uint64_t> parents;  // for ".." in soft link targets
  for (std::string_view part : parts) {
    if (part == "..") {
      if (parents.empty()) throw NotFoundError("path '" + std::string(path) + "' climbs above its start");
      at = parents.back();
      parents.pop_back();
      continue;
    }
    if (kind(at) != ObjectKind::kGroup) {
      if (missing_ok) return std::nullopt;
      throw NotFoundError("'" + std::string(part) + "' is looked up in an object that is not a group");
    }
    const Link* found = links(at).find(part);
    if (found == nullptr) {
      if (missing_ok) return std::nullopt;
      throw NotFoundError("no object named '" + std::string(part) + "'");
    }
    const Link l = *found;  // (a copy: resolving a soft link's target may decode more objects)
    parents.push_back(at);
    switch (l.type) {
      case Link::Type::kHard:
        at = l.address;
        break;
      case Link::Type::kSoft: {
        if (++hops > limits::kMaxLinkHops)
          throw FormatError("too many soft links (a cycle?) resolving '" + std::string(path) + "'");
        std::optional<uint64_t> target = resolve_from(at, l.target, hops, missing_ok);
        if (!target) return std::nullopt;
        at = *target;
        break;
      }
      case Link::Type::kExternal:
        throw UnsupportedFeatureError("external link '" + std::string(part) + "' to '" + std::string(l.external_file) +
                                      ":" + std::string(l.target) + "'");
    }
  }
  return at;
}

Walk File::walk(uint64_t start) const {
  Walk out;
  AddressMap<bool> seen;
  seen.insert(start, true);
  // Hardening: every path repeats its parent's, so deep groups with long names would make
  // the paths quadratic in the file size; they get the same bound as other returned values.
  LocalBudget budget(ctx_);
  std::lock_guard<std::mutex> lock(mutex_);
  walk_locked(start, 0, 0, 0, seen, budget, out);
  return out;
}

void File::walk_locked(uint64_t group, size_t prefix_offset, size_t prefix_size, int depth, AddressMap<bool>& seen,
                       LocalBudget& budget, Walk& out) const {
  if (depth > limits::kMaxGroupDepth) throw FormatError("groups nest too deep");
  // Like h5py (H5Ovisit by name), always in name order, even in creation-ordered groups.
  const GroupLinks& ls = links_locked(object_locked(group));
  for (size_t i = 0; i < ls.links.size(); ++i) {
    const Link& l = ls.in_name_order(i);
    if (l.type != Link::Type::kHard) continue;
    if (!seen.insert(l.address, true).second) continue;
    Object& o = object_locked(l.address);
    // The path is "<prefix>/<name>", or "<name>" at the top; each is preceded by a '/'.
    size_t size = prefix_size == 0 ? l.name.size() : prefix_size + 1 + l.name.size();
    budget.take(size + 1, "object paths");
    size_t offset = out.paths.size() + 1;
    out.paths.reserve(offset + size);  // (the prefix is copied from this very buffer)
    out.paths.push_back('/');
    if (prefix_size != 0) {
      out.paths.append(out.paths, prefix_offset, prefix_size);
      out.paths.push_back('/');
    }
    out.paths.append(l.name);
    out.entries.push_back(WalkEntry{offset, size, o.kind, l.address});
    if (o.kind == ObjectKind::kGroup) walk_locked(l.address, offset, size, depth + 1, seen, budget, out);
  }
}

std::vector<Attribute> File::attributes(uint64_t object) const {
  const ObjectHeader& h = header(object);
  std::vector<Attribute> out;
  LocalBudget budget(ctx_);  // hardening: vlen strings may all name one big heap object
  for (const AttributeMessage& m : read_attributes(ctx_, h)) {
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

const Dataset& File::dataset(uint64_t address) const {
  std::lock_guard<std::mutex> lock(mutex_);
  Object& o = object_locked(address);
  if (o.kind != ObjectKind::kDataset) throw Error("object is not a dataset");
  if (!o.dataset) o.dataset = arena_.make<Dataset>(ctx_, o.header);
  return *o.dataset;
}

}  // namespace weightio::hdf5

namespace weightio::hdf5 {

bool File::is_tagged_bfloat16(uint64_t address) const {
  const Dataset& ds = dataset(address);
  if (ds.type().cls != DataType::Class::kOpaque || ds.type().size != 2) return false;
  for (const Attribute& a : attributes(address)) {
    if (a.name != "dtype" || a.space.num_elements() != 1) continue;
    std::string value = a.vlen_string ? (a.strings.empty() ? "" : a.strings[0])
                                      : std::string(a.raw.begin(), a.raw.end());
    return value.compare(0, 8, "bfloat16") == 0 && value.find_first_not_of('\0', 8) == std::string::npos;
  }
  return false;
}

}  // namespace weightio::hdf5
