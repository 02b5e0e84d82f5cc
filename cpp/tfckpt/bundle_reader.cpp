#include "tfckpt/bundle_reader.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <exception>
#include <limits>
#include <unordered_set>

#include "convert/element_type.h"
#include "io/cursor.h"
#include "io/errors.h"
#include "tfckpt/crc32c.h"
#include "tfckpt/slice_key.h"
#include "tfckpt/wire.h"

namespace weightio::tfckpt {

namespace {

constexpr const char* kHeaderKey = "";
// TF writes data file names with %05d; far more shards than that is a hostile header.
constexpr int32_t kMaxShards = 1 << 20;
// Partitioned tensors: pairwise overlap checks beyond this many are refused.
constexpr uint64_t kMaxSliceComparisons = uint64_t{1} << 26;
// Version of the bundle format this reader implements (kTensorBundleVersion).
constexpr int32_t kConsumerVersion = 1;

std::string quoted(const std::string& key) {
  std::string out = "'";
  for (unsigned char ch : key) {
    if (ch >= 0x20 && ch < 0x7f && ch != '\\') {
      out.push_back(static_cast<char>(ch));
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", ch);
      out += buf;
    }
  }
  return out + "'";
}

bool mul_overflows(uint64_t a, uint64_t b, uint64_t* out) {
  if (a != 0 && b > std::numeric_limits<uint64_t>::max() / a) return true;
  *out = a * b;
  return false;
}

uint64_t volume(const std::vector<int64_t>& dims) {
  uint64_t n = 1;
  for (int64_t d : dims) n *= static_cast<uint64_t>(d);  // callers checked the product fits
  return n;
}

void swap_units(const uint8_t* src, uint8_t* dst, size_t nbytes, uint32_t unit) {
  if (unit <= 1) {
    if (src != dst) std::memmove(dst, src, nbytes);
    return;
  }
  for (size_t i = 0; i + unit <= nbytes; i += unit) {
    uint8_t tmp[16];
    std::memcpy(tmp, src + i, unit);
    for (uint32_t k = 0; k < unit; ++k) dst[i + k] = tmp[unit - 1 - k];
  }
}

}  // namespace

BundleReader::BundleReader(std::shared_ptr<const io::MappedFile> index, std::string prefix, ShardOpener opener)
    : index_(std::move(index)), prefix_(std::move(prefix)), opener_(std::move(opener)) {
  try {
    parse_index();
  } catch (const Error&) {
    rethrow_in(index_->path(), "");
  }
}

std::string BundleReader::data_filename(const std::string& prefix, int32_t shard_id, int32_t num_shards) {
  char buf[64];
  std::snprintf(buf, sizeof buf, ".data-%05d-of-%05d", shard_id, num_shards);
  return prefix + buf;
}

bool BundleReader::needs_byteswap() const { return big_endian() != convert::host_is_big_endian(); }

void BundleReader::parse_index() {
  table_ = std::make_unique<Table>(index_->bytes());
  const auto& all = table_->entries();
  if (all.empty() || all.front().key != kHeaderKey)
    throw FormatError("tensor bundle index has no header entry (key \"\")", all.empty() ? 0 : all.front().value_offset);
  const TableEntry& head = all.front();
  header_ = parse_bundle_header(head.value, head.value_offset);
  if (header_.num_shards < 1 || header_.num_shards > kMaxShards)
    throw FormatError("bundle header has " + std::to_string(header_.num_shards) + " shards", head.value_offset);
  if (header_.endianness != 0 && header_.endianness != 1)
    throw FormatError("bundle header has unknown endianness " + std::to_string(header_.endianness), head.value_offset);
  // tensorflow/core/public/version.h CheckVersions: producer >= 0, min_consumer <= ours,
  // ours not listed as bad.
  const VersionDef& v = header_.version;
  if (v.producer < 0) throw FormatError("bundle header has a negative producer version", head.value_offset);
  if (v.min_consumer > kConsumerVersion)
    throw UnsupportedFeatureError("tensor bundle needs a reader of version " + std::to_string(v.min_consumer) +
                                  " or newer (this one implements version " + std::to_string(kConsumerVersion) +
                                  ")");
  for (int32_t bad : v.bad_consumers)
    if (bad == kConsumerVersion)
      throw UnsupportedFeatureError("tensor bundle disallows readers of version " + std::to_string(bad));

  entries_.reserve(all.size());
  for (size_t i = 1; i < all.size(); ++i) {
    entries_.emplace(all[i].key, parse_bundle_entry(all[i].value, all[i].value_offset));
    entry_offsets_.emplace(all[i].key, all[i].value_offset);
  }
  // Slices first: their keys are hidden from the names, as in TF's CheckpointReader.
  std::unordered_set<std::string> slice_keys;
  for (size_t i = 1; i < all.size(); ++i) {
    const BundleEntry& e = entries_.at(all[i].key);
    if (e.slices.empty()) continue;
    check_entry(all[i].key, e, all[i].value_offset);
    resolve_slices(all[i].key, e, all[i].value_offset);
    for (const Slice& s : slices_.at(all[i].key)) slice_keys.insert(s.key);
  }
  for (size_t i = 1; i < all.size(); ++i) {
    if (slice_keys.count(all[i].key)) continue;
    check_entry(all[i].key, entries_.at(all[i].key), all[i].value_offset);
    names_.push_back(all[i].key);
  }
}

// The checks TF's GetBundleEntryProto makes (TensorShape::IsValid) plus the ones that keep
// later reads in range: a known shard, non-negative offset and size.
void BundleReader::check_entry(const std::string& key, const BundleEntry& e, uint64_t at) const {
  const std::string what = "entry " + quoted(key) + ": ";
  if (e.shape.unknown_rank) throw FormatError(what + "shape of unknown rank", at);
  uint64_t n = 1;
  for (int64_t d : e.shape.dims) {
    if (d < 0) throw FormatError(what + "negative dimension " + std::to_string(d), at);
    if (mul_overflows(n, static_cast<uint64_t>(d), &n) || n > static_cast<uint64_t>(INT64_MAX))
      throw FormatError(what + "shape has more than 2^63 elements", at);
  }
  if (!e.slices.empty()) return;  // shard, offset and size are ignored for partitioned tensors
  if (e.shard_id < 0 || e.shard_id >= header_.num_shards)
    throw FormatError(what + "shard " + std::to_string(e.shard_id) + " outside [0, " +
                          std::to_string(header_.num_shards) + ")",
                      at);
  if (e.offset < 0 || e.size < 0) throw FormatError(what + "negative data offset or size", at);
}

// Resolves the slices a partitioned tensor lists (BundleWriter::AddSlice): each must lie in
// the full shape and have its own entry of the same dtype and the slice's shape; together
// they must tile the tensor exactly, without overlap (TensorSliceSet::Register/QueryMeta).
void BundleReader::resolve_slices(const std::string& name, const BundleEntry& full, uint64_t at) {
  const std::string what = "partitioned tensor " + quoted(name) + ": ";
  const size_t rank = full.shape.dims.size();
  if (rank == 0) throw FormatError(what + "a scalar cannot be partitioned", at);
  std::vector<Slice> slices;
  slices.reserve(full.slices.size());
  for (const TensorSliceSpec& spec : full.slices) {
    if (spec.extents.size() != rank)
      throw FormatError(what + "slice of rank " + std::to_string(spec.extents.size()) + ", tensor rank " +
                            std::to_string(rank),
                        at);
    Slice s;
    std::vector<int64_t> key_starts, key_lengths;
    for (size_t d = 0; d < rank; ++d) {
      const SliceExtent& e = spec.extents[d];
      const int64_t dim = full.shape.dims[d];
      key_starts.push_back(e.start);
      key_lengths.push_back(e.has_length ? e.length : -1);
      if (!e.has_length || e.length == -1) {
        if (e.start != 0) throw FormatError(what + "whole-dimension extent with a non-zero start", at);
        s.start.push_back(0);
        s.length.push_back(dim);
      } else {
        if (e.start < 0 || e.length < 0 || e.start > dim || e.length > dim - e.start)
          throw FormatError(what + "slice extent [" + std::to_string(e.start) + ", +" + std::to_string(e.length) +
                                ") outside dimension " + std::to_string(d) + " of size " + std::to_string(dim),
                            at);
        s.start.push_back(e.start);
        s.length.push_back(e.length);
      }
    }
    s.key = encode_tensor_name_slice(name, key_starts, key_lengths);
    auto it = entries_.find(s.key);
    if (it == entries_.end()) throw FormatError(what + "a slice's entry is missing from the index", at);
    const BundleEntry& se = it->second;
    const uint64_t se_at = entry_offsets_.at(s.key);
    if (!se.slices.empty()) throw FormatError(what + "a slice entry is itself partitioned", se_at);
    check_entry(s.key, se, se_at);
    if (se.dtype != full.dtype) throw FormatError(what + "a slice's dtype differs from the tensor's", se_at);
    if (se.shape.dims != s.length) throw FormatError(what + "a slice's stored shape differs from its extent", se_at);
    s.entry = &se;
    slices.push_back(std::move(s));
  }
  // No two slices overlap: sweep along the dimension where the starts differ most.
  size_t axis = 0, best = 0;
  for (size_t d = 0; d < rank; ++d) {
    std::vector<int64_t> starts;
    for (const Slice& s : slices) starts.push_back(s.start[d]);
    std::sort(starts.begin(), starts.end());
    size_t distinct = static_cast<size_t>(std::unique(starts.begin(), starts.end()) - starts.begin());
    if (distinct > best) best = distinct, axis = d;
  }
  std::vector<size_t> order(slices.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return slices[a].start[axis] < slices[b].start[axis]; });
  uint64_t comparisons = 0, covered = 0;
  for (size_t i = 0; i < order.size(); ++i) {
    const Slice& a = slices[order[i]];
    covered += volume(a.length);
    for (size_t j = i + 1; j < order.size(); ++j) {
      const Slice& b = slices[order[j]];
      if (b.start[axis] >= a.start[axis] + a.length[axis]) break;
      if (++comparisons > kMaxSliceComparisons)
        throw UnsupportedFeatureError(what + "too many slices to check for overlap");
      bool overlap = true;
      for (size_t d = 0; d < rank && overlap; ++d)
        overlap = a.start[d] < b.start[d] + b.length[d] && b.start[d] < a.start[d] + a.length[d];
      if (overlap) throw FormatError(what + "two slices overlap", at);
    }
  }
  if (covered != volume(full.shape.dims))
    throw FormatError(what + "the slices cover " + std::to_string(covered) + " of " +
                          std::to_string(volume(full.shape.dims)) + " elements",
                      at);
  slices_.emplace(name, std::move(slices));
}

const BundleEntry* BundleReader::find(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end() || !std::binary_search(names_.begin(), names_.end(), name)) return nullptr;
  return &it->second;
}

const BundleEntry& BundleReader::entry(const std::string& name) const {
  const BundleEntry* e = find(name);
  if (e == nullptr) throw NotFoundError("key " + quoted(name) + " not found in checkpoint " + prefix_);
  return *e;
}

uint64_t BundleReader::num_elements(const BundleEntry& e) { return volume(e.shape.dims); }

std::shared_ptr<const io::MappedFile> BundleReader::shard(int32_t id) const {
  if (id < 0 || id >= header_.num_shards) throw FormatError("shard " + std::to_string(id) + " out of range");
  std::lock_guard<std::mutex> lock(shard_mutex_);
  if (shards_.empty()) shards_.resize(static_cast<size_t>(header_.num_shards));
  auto& slot = shards_[static_cast<size_t>(id)];
  if (!slot) {
    std::string filename = data_filename(prefix_, id, header_.num_shards);
    slot = opener_ ? opener_(id, filename) : std::make_shared<const io::MappedFile>(filename);
    if (!slot) throw NotFoundError("data file " + filename + " is missing");
  }
  return slot;
}

io::ByteSpan BundleReader::stored_bytes(const std::string& key, const BundleEntry& e,
                                        std::shared_ptr<const io::MappedFile>* keep) const {
  const DTypeInfo* info = dtype_info(e.dtype);
  if (info == nullptr || e.dtype == DT_RESOURCE || e.dtype == DT_VARIANT)
    throw UnsupportedFeatureError(index_->path() + ": tensor " + quoted(key) + " has dtype " + dtype_enum_name(e.dtype) +
                                  ", which this reader does not read");
  std::shared_ptr<const io::MappedFile> file = shard(e.shard_id);
  const uint64_t offset = static_cast<uint64_t>(e.offset), size = static_cast<uint64_t>(e.size);
  try {
    if (info->size > 0) {
      uint64_t expected = 0;
      if (mul_overflows(num_elements(e), info->size, &expected) || expected != size)
        throw FormatError("tensor " + quoted(key) + " stores " + std::to_string(size) + " bytes, its shape needs " +
                              std::to_string(expected),
                          offset);
    }
    if (!file->bytes().contains(offset, size))
      throw FormatError("tensor " + quoted(key) + " data [" + std::to_string(offset) + ", +" + std::to_string(size) +
                            ") lies outside the data file (" + std::to_string(file->size()) + " bytes)",
                        offset);
  } catch (const FormatError&) {
    rethrow_in(file->path(), "");
  }
  *keep = file;
  return io::ByteSpan(file->data() + offset, static_cast<size_t>(size));
}

void BundleReader::check_crc(const std::string& key, const BundleEntry& e, io::ByteSpan bytes,
                             const io::MappedFile& shard) const {
  const uint32_t actual = crc32c(bytes.data(), bytes.size());
  if (actual != crc32c_unmask(e.crc32c))
    throw ChecksumError(shard.path() + ": tensor " + quoted(key) + ": CRC-32C of its " + std::to_string(bytes.size()) +
                            " bytes does not match the index",
                        static_cast<uint64_t>(e.offset));
}

bool BundleReader::direct_span(const std::string& name, bool verify, io::ByteSpan* span,
                               std::shared_ptr<const io::MappedFile>* keep) const {
  const BundleEntry& e = entry(name);
  if (!e.slices.empty() || !is_fixed_size(e.dtype)) return false;
  const DTypeInfo* info = dtype_info(e.dtype);
  if (needs_byteswap() && info->swap_unit > 1) return false;
  io::ByteSpan bytes = stored_bytes(name, e, keep);
  if (verify) check_crc(name, e, bytes, **keep);
  *span = bytes;
  return true;
}

void BundleReader::copy_elements(const uint8_t* src, uint8_t* dst, size_t n, const DTypeInfo& info,
                                 const convert::ElementType& to, bool raw) const {
  if (raw) {
    if (needs_byteswap()) {
      swap_units(src, dst, n * info.size, info.swap_unit);
    } else {
      std::memcpy(dst, src, n * info.size);
    }
    return;
  }
  convert::ElementType from = info.element;
  from.big_endian = big_endian();
  convert::convert(src, from, dst, to, n);
}

void BundleReader::copy_slice(const BundleEntry& full, const Slice& s, io::ByteSpan src, uint8_t* out,
                              const convert::ElementType& to, bool raw) const {
  const DTypeInfo& info = *dtype_info(full.dtype);
  const uint32_t out_size = raw ? info.size : to.size;
  const std::vector<int64_t>& fs = full.shape.dims;
  const size_t rank = fs.size();
  // The innermost dimensions the slice spans completely, plus the first it does not, are
  // one contiguous run in both the slice and the full tensor.
  size_t d = rank;
  uint64_t run = 1;
  while (d > 0) {
    --d;
    run *= static_cast<uint64_t>(s.length[d]);
    if (s.length[d] != fs[d]) break;
  }
  if (run == 0) return;
  std::vector<uint64_t> full_stride(rank, 1);
  for (size_t k = rank - 1; k > 0; --k) full_stride[k - 1] = full_stride[k] * static_cast<uint64_t>(fs[k]);
  uint64_t base = 0;
  for (size_t k = 0; k < rank; ++k) base += static_cast<uint64_t>(s.start[k]) * full_stride[k];
  // Odometer over the outer dimensions [0, d).
  std::vector<int64_t> idx(d, 0);
  const uint8_t* from = src.data();
  while (true) {
    uint64_t at = base;
    for (size_t k = 0; k < d; ++k) at += static_cast<uint64_t>(idx[k]) * full_stride[k];
    copy_elements(from, out + at * out_size, static_cast<size_t>(run), info, to, raw);
    from += run * info.size;
    size_t k = d;
    while (k > 0) {
      --k;
      if (++idx[k] < s.length[k]) break;
      idx[k] = 0;
      if (k == 0) return;
    }
    if (d == 0) return;
  }
}

void BundleReader::read(const std::string& name, uint8_t* out, const convert::ElementType& to, bool raw,
                        bool verify) const {
  const BundleEntry& e = entry(name);
  const DTypeInfo* info = dtype_info(e.dtype);
  if (info == nullptr || info->size == 0)
    throw UnsupportedFeatureError(index_->path() + ": tensor " + quoted(name) + " has dtype " + dtype_enum_name(e.dtype) +
                                  (e.dtype == DT_STRING ? " (read it as strings)" : ", which this reader does not read"));
  std::shared_ptr<const io::MappedFile> keep;
  auto it = slices_.find(name);
  if (it == slices_.end()) {
    io::ByteSpan bytes = stored_bytes(name, e, &keep);
    if (verify) check_crc(name, e, bytes, *keep);
    if (raw && !needs_byteswap())
      keep->copy_out(bytes.data(), bytes.size(), out);  // large ones without mapping their pages
    else
      copy_elements(bytes.data(), out, static_cast<size_t>(num_elements(e)), *info, to, raw);
    return;
  }
  for (const Slice& s : it->second) {
    io::ByteSpan bytes = stored_bytes(s.key, *s.entry, &keep);
    if (verify) check_crc(s.key, *s.entry, bytes, *keep);
    copy_slice(e, s, bytes, out, to, raw);
  }
}

void BundleReader::check_readable(const std::string& name) const {
  const BundleEntry& e = entry(name);
  std::shared_ptr<const io::MappedFile> keep;
  auto it = slices_.find(name);
  if (it == slices_.end()) {
    (void)stored_bytes(name, e, &keep);
    return;
  }
  for (const Slice& s : it->second) (void)stored_bytes(s.key, *s.entry, &keep);
}

void BundleReader::verify(const std::string& name) const {
  const BundleEntry& e = entry(name);
  if (e.dtype == DT_STRING && e.slices.empty()) {
    (void)read_strings(name, true);
    return;
  }
  std::shared_ptr<const io::MappedFile> keep;
  auto it = slices_.find(name);
  if (it == slices_.end()) {
    const io::ByteSpan bytes = stored_bytes(name, e, &keep);  // sets `keep`: not in the same call
    check_crc(name, e, bytes, *keep);
    return;
  }
  for (const Slice& s : it->second) {
    const io::ByteSpan bytes = stored_bytes(s.key, *s.entry, &keep);
    check_crc(s.key, *s.entry, bytes, *keep);
  }
}

// tensor_bundle.cc WriteStringTensor: varint64 lengths, a masked CRC-32C of the lengths
// (each as a uint32, or a uint64 when it does not fit, in the writer's byte order), then the
// bytes of every element. The entry's CRC covers those length words, the length checksum as
// stored, and the element bytes.
StringTensor BundleReader::read_strings(const std::string& name, bool verify) const {
  const BundleEntry& e = entry(name);
  if (e.dtype != DT_STRING) throw Error(index_->path() + ": tensor " + quoted(name) + " is not a string tensor");
  if (!e.slices.empty()) throw UnsupportedFeatureError(index_->path() + ": partitioned string tensor " + quoted(name));
  StringTensor st;
  io::ByteSpan bytes = stored_bytes(name, e, &st.keep);
  const uint64_t n = num_elements(e);
  const std::string& path = st.keep->path();
  try {
    const auto offset = static_cast<uint64_t>(e.offset);
    if (bytes.empty()) {  // TF's reader accepts this only for a tensor without elements
      if (n != 0) throw FormatError("string tensor " + quoted(name) + " has elements but no bytes", offset);
      return st;
    }
    if (n > bytes.size()) throw FormatError("string tensor " + quoted(name) + " has more elements than bytes", offset);
    io::Cursor c(bytes, offset);
    std::vector<uint64_t> lengths(static_cast<size_t>(n));
    uint32_t crc = 0;
    for (uint64_t i = 0; i < n; ++i) {
      const uint64_t len = read_varint64(c);
      lengths[static_cast<size_t>(i)] = len;
      uint8_t word[8];
      const unsigned width = len <= UINT32_MAX ? 4 : 8;
      for (unsigned k = 0; k < width; ++k) {
        const uint8_t b = static_cast<uint8_t>(len >> (8 * k));
        word[big_endian() ? width - 1 - k : k] = b;
      }
      crc = crc32c_extend(crc, word, width);
    }
    const uint64_t checksum_at = c.file_offset();
    const uint8_t* raw_checksum = c.take(4);
    uint32_t stored = 0;
    for (unsigned k = 0; k < 4; ++k)
      stored |= static_cast<uint32_t>(raw_checksum[big_endian() ? 3 - k : k]) << (8 * k);
    if (crc32c_unmask(stored) != crc && kCheckStructureChecksums)
      throw ChecksumError("string tensor " + quoted(name) + ": the length checksum does not match", checksum_at);
    crc = crc32c_extend(crc, raw_checksum, 4);
    uint64_t total = 0;
    for (uint64_t len : lengths) {
      if (len > c.remaining() - total)
        throw FormatError("string tensor " + quoted(name) + ": element lengths exceed its stored size", checksum_at);
      total += len;
    }
    if (total != c.remaining())
      throw FormatError("string tensor " + quoted(name) + ": element lengths do not add up to its stored size",
                        checksum_at);
    st.elements.reserve(lengths.size());
    for (uint64_t len : lengths) st.elements.push_back(c.take_span(len));
    if (verify) {
      const io::ByteSpan payload(bytes.data() + (c.pos() - total), static_cast<size_t>(total));
      crc = crc32c_extend(crc, payload.data(), payload.size());
      if (crc != crc32c_unmask(e.crc32c))
        throw ChecksumError("string tensor " + quoted(name) + ": CRC-32C does not match the index", offset);
    }
  } catch (const Error&) {
    rethrow_in(path, "");
  }
  return st;
}

ObjectGraph BundleReader::object_graph() const {
  StringTensor st = read_strings(kObjectGraphKey, false);
  const BundleEntry& e = entry(kObjectGraphKey);
  if (st.elements.size() != 1)
    throw FormatError(index_->path() + ": " + kObjectGraphKey + " is not a scalar string");
  (void)e;
  const io::ByteSpan bytes = st.elements[0];
  const auto at = static_cast<uint64_t>(bytes.data() - st.keep->data());
  try {
    return parse_object_graph(bytes, at);
  } catch (const Error&) {
    rethrow_in(st.keep->path(), kObjectGraphKey);
  }
}

// Re-throws the current weightio error with "<file>: [tensor 'key': ]" in front of its message,
// keeping its class.
void BundleReader::rethrow_in(const std::string& file, const std::string& key) const {
  std::string prefix = file + ": ";
  if (!key.empty()) prefix += "tensor " + quoted(key) + ": ";
  try {
    throw;
  } catch (const ChecksumError& e) {
    if (std::string(e.what()).rfind(file, 0) == 0) throw;
    throw ChecksumError(prefix + e.what());
  } catch (const FormatError& e) {
    if (std::string(e.what()).rfind(file, 0) == 0) throw;
    throw FormatError(prefix + e.what());
  } catch (const UnsupportedFeatureError& e) {
    if (std::string(e.what()).rfind(file, 0) == 0) throw;
    throw UnsupportedFeatureError(prefix + e.what());
  }
}

}  // namespace weightio::tfckpt
