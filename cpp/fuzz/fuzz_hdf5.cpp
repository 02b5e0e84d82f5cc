// libFuzzer target for the native HDF5 reader (see cpp/fuzz/README.md).
//
// Wraps the input bytes in a MappedFile, opens it as an HDF5 file and walks everything a
// user can reach: every link of every group (hard, soft, external), the attributes of
// every object, and every dataset's description and data (read whole in its stored type,
// read as a sub-box, and converted to float64/float32 where the type is numeric). Only
// weightio::Error is an expected outcome; anything else (a crash, a sanitizer report, an
// uncaught std::bad_alloc / std::length_error, a timeout, an RSS blow-up) is a bug in the
// core.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "convert/element_type.h"
#include "hdf5/file.h"
#include "hdf5/tree_digest.h"
#include "io/errors.h"
#include "io/mapped_file.h"

namespace {

using namespace weightio;

// Datasets whose stored data is larger than this are described but not read: the
// fuzzer hunts for bugs, not for the allocation a legitimately huge dataset needs.
constexpr uint64_t kMaxReadBytes = uint64_t{16} << 20;

template <class F>
void guarded(F f) {
  try {
    f();
  } catch (const Error&) {
    // Expected for hostile input: the file was rejected with a weightio error.
  }
}

void read_dataset(const hdf5::File& file, uint64_t address) {
  const hdf5::Dataset* ds = &file.dataset(address);
  const hdf5::Dataspace& space = ds->space();
  (void)ds->type().numpy_typestr();
  (void)ds->type().describe();
  guarded([&] { (void)file.is_tagged_bfloat16(address); });
  io::ByteSpan span;
  guarded([&] {
    if (ds->stored_span(&span)) (void)ds->contiguous_file_offset();
  });
  ds->check_readable();
  const convert::ElementType from = ds->stored_type();
  const uint64_t n = ds->num_elements();
  if (from.size == 0 || from.size > kMaxReadBytes) return;
  if (n > kMaxReadBytes / from.size) {
    // Too big to read whole: single elements (first, middle, last). A size computation
    // that wraps would read outside the file right here.
    if (space.kind != hdf5::Dataspace::Kind::kSimple || n == 0) return;
    std::vector<uint8_t> one(from.size);
    for (int pick = 0; pick < 3; ++pick) {
      std::vector<uint64_t> start, count(space.dims.size(), 1);
      for (uint64_t d : space.dims) start.push_back(pick == 0 ? 0 : pick == 1 ? d / 2 : d - 1);
      guarded([&] { ds->read(start, count, one.data(), from); });
    }
    return;
  }

  std::vector<uint8_t> out(static_cast<size_t>(n * from.size) + 1);
  guarded([&] { ds->read_all(out.data(), from); });

  // A sub-box: the second half of every dimension (exercises partial chunk overlap).
  if (space.kind == hdf5::Dataspace::Kind::kSimple && n > 0) {
    std::vector<uint64_t> start, count;
    for (uint64_t d : space.dims) {
      start.push_back(d / 2);
      count.push_back(d - d / 2);
    }
    guarded([&] { ds->read(start, count, out.data(), from); });
  }
  // Conversions (numeric types only; the core refuses raw <-> number).
  if (from.is_numeric() && n <= kMaxReadBytes / 8) {
    std::vector<uint8_t> conv(static_cast<size_t>(n * 8) + 1);
    guarded([&] { ds->read_all(conv.data(), convert::ElementType{convert::Kind::kFloat, 8, false}); });
    guarded([&] { ds->read_all(conv.data(), convert::ElementType{convert::Kind::kFloat, 2, true}); });
  }
}

void visit_object(const hdf5::File& file, uint64_t address) {
  guarded([&] {
    for (const hdf5::Attribute& a : file.attributes(address)) {
      (void)a.space.num_elements();
      (void)a.type.numpy_typestr();
    }
  });
  guarded([&] {
    hdf5::ObjectKind kind = file.kind(address);
    if (kind == hdf5::ObjectKind::kDataset) {
      read_dataset(file, address);
    } else if (kind == hdf5::ObjectKind::kGroup) {
      const hdf5::GroupLinks& links = file.links(address);
      for (const hdf5::Link& l : links.links) {
        guarded([&] { (void)file.link(address, l.name); });
        // Soft links are resolved (cycles and ".." must fail cleanly); external ones refuse.
        if (l.type != hdf5::Link::Type::kHard) {
          guarded([&] { (void)file.resolve(address, std::string(l.name)); });
          guarded([&] { (void)file.find(address, std::string(l.name) + "/x"); });  // misses without raising
        }
      }
    }
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto map = std::make_shared<const io::MappedFile>(data, size, nullptr);
    hdf5::File file(map);
    const uint64_t root = file.root();
    visit_object(file, root);
    hdf5::Walk walk = file.walk(root);
    for (const hdf5::WalkEntry& e : walk.entries) {
      visit_object(file, e.address);
      guarded([&] { (void)file.resolve(root, std::string(walk.path(e))); });
      guarded([&] { (void)file.resolve(root, std::string(walk.slash_path(e))); });
      guarded([&] { (void)file.find(root, std::string(walk.path(e)) + "/missing/x"); });
    }
    guarded([&] { (void)hdf5::digest_tree(file, root); });
  } catch (const Error&) {
    // Rejected cleanly.
  }
  return 0;
}
