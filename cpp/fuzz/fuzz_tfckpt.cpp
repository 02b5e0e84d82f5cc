// libFuzzer target for the TensorFlow checkpoint (tensor bundle) reader, cpp/tfckpt.
//
// Input: a little-endian uint32 L, then L bytes of `.index` (the table), then the bytes every
// data shard reads from (one buffer stands for all shards). The target opens the bundle and
// does everything a user can: list the tensors, read each one (zero-copy span, raw, converted
// to float64, as strings), verify checksums, decode the object graph. Only weightio::Error is
// an expected outcome; anything else (a crash, a sanitizer report, an uncaught
// std::bad_alloc, a timeout) is a bug in the core.
//
// Build (clang with libFuzzer; the fuzz build skips the index block and string-length
// checksums so mutations reach the parsers behind them, see crc32c.h):
//   clang++ -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
//     -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION -Icpp cpp/fuzz/fuzz_tfckpt.cpp cpp/tfckpt/*.cpp \
//     cpp/io/mapped_file.cpp cpp/convert/convert.cpp -o /tmp/fuzz_tfckpt
// Seeds: `python tests/test_tf_checkpoint.py seeds DIR` (small checkpoints in this layout).
// Run:   ASAN_OPTIONS=detect_leaks=0 /tmp/fuzz_tfckpt -max_total_time=600 -rss_limit_mb=2048 \
//          -malloc_limit_mb=2048 -timeout=10 /tmp/tfwork DIR
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "convert/element_type.h"
#include "io/errors.h"
#include "io/mapped_file.h"
#include "tfckpt/bundle_reader.h"

namespace {

using namespace weightio;

constexpr uint64_t kMaxReadBytes = uint64_t{16} << 20;

template <class F>
void guarded(F f) {
  try {
    f();
  } catch (const Error&) {
    // Expected for hostile input.
  }
}

void exercise(const tfckpt::BundleReader& r, const std::string& name) {
  const tfckpt::BundleEntry& e = r.entry(name);
  const tfckpt::DTypeInfo* info = tfckpt::dtype_info(e.dtype);
  guarded([&] { r.verify(name); });
  if (e.dtype == tfckpt::DT_STRING) {
    guarded([&] { (void)r.read_strings(name, true); });
    return;
  }
  if (info == nullptr || info->size == 0) return;
  io::ByteSpan span;
  std::shared_ptr<const io::MappedFile> keep;
  guarded([&] { (void)r.direct_span(name, true, &span, &keep); });
  r.check_readable(name);
  const uint64_t n = tfckpt::BundleReader::num_elements(e);
  const uint64_t width = info->size > 8 ? info->size : 8;  // raw (complex128: 16) or float64
  if (n > kMaxReadBytes / width) return;
  std::vector<uint8_t> out(static_cast<size_t>(n * width) + 1);
  guarded([&] { r.read(name, out.data(), info->element, true, true); });
  if (info->element.kind != convert::Kind::kRaw) {
    convert::ElementType f64{convert::Kind::kFloat, 8, false};
    guarded([&] { r.read(name, out.data(), f64, false, false); });
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  uint32_t index_len;
  std::memcpy(&index_len, data, 4);
  const size_t rest = size - 4;
  const size_t il = index_len > rest ? rest : index_len;
  auto index = std::make_shared<io::MappedFile>(data + 4, il, nullptr);
  auto shard = std::make_shared<io::MappedFile>(data + 4 + il, rest - il, nullptr);
  try {
    tfckpt::BundleReader r(index, "fuzz", [&](int32_t, const std::string&) { return shard; });
    for (const std::string& name : r.names()) guarded([&] { exercise(r, name); });
    guarded([&] {
      if (r.has_object_graph()) (void)r.object_graph();
    });
    guarded([&] { (void)r.entry("no such tensor"); });
  } catch (const Error&) {
  }
  return 0;
}
