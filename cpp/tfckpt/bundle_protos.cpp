#include "tfckpt/bundle_protos.h"

#include "io/errors.h"
#include "tfckpt/wire.h"

namespace weightio::tfckpt {

namespace {

// Hostile caps: TensorShape allows 254 dimensions; no real partitioning has this many slices.
constexpr size_t kMaxDims = 254;
constexpr size_t kMaxSlices = 1u << 16;
constexpr size_t kMaxBadConsumers = 1u << 16;

int32_t as_int32(uint64_t v) { return static_cast<int32_t>(static_cast<uint32_t>(v)); }
int64_t as_int64(uint64_t v) { return static_cast<int64_t>(v); }

void parse_version(WireReader r, VersionDef& v) {
  while (r.next()) {
    switch (r.field()) {
      case 1: if (r.is(WireType::kVarint)) { v.producer = as_int32(r.varint()); continue; } break;
      case 2: if (r.is(WireType::kVarint)) { v.min_consumer = as_int32(r.varint()); continue; } break;
      case 3:
        if (r.is(WireType::kVarint)) {
          if (v.bad_consumers.size() >= kMaxBadConsumers) throw FormatError("too many bad_consumers", r.tag_offset());
          v.bad_consumers.push_back(as_int32(r.varint()));
          continue;
        }
        if (r.is(WireType::kLengthDelimited)) {  // packed
          uint64_t at = 0;
          io::ByteSpan packed = r.bytes(&at);
          io::Cursor c(packed, at);
          while (c.remaining() > 0) {
            if (v.bad_consumers.size() >= kMaxBadConsumers) throw FormatError("too many bad_consumers", at);
            v.bad_consumers.push_back(as_int32(read_varint64(c)));
          }
          continue;
        }
        break;
      default: break;
    }
    r.skip();
  }
}

void parse_shape(WireReader r, TensorShape& s) {
  while (r.next()) {
    if (r.field() == 2 && r.is(WireType::kLengthDelimited)) {
      if (s.dims.size() >= kMaxDims) throw FormatError("tensor shape has more than 254 dimensions", r.tag_offset());
      WireReader dim = r.message();
      int64_t size = 0;
      while (dim.next()) {
        if (dim.field() == 1 && dim.is(WireType::kVarint)) size = as_int64(dim.varint());
        else dim.skip();  // the dimension's name
      }
      s.dims.push_back(size);
    } else if (r.field() == 3 && r.is(WireType::kVarint)) {
      s.unknown_rank = r.varint() != 0;
    } else {
      r.skip();
    }
  }
}

void parse_slice(WireReader r, TensorSliceSpec& s) {
  while (r.next()) {
    if (r.field() == 1 && r.is(WireType::kLengthDelimited)) {
      if (s.extents.size() >= kMaxDims) throw FormatError("tensor slice has more than 254 extents", r.tag_offset());
      WireReader ext = r.message();
      SliceExtent e;
      while (ext.next()) {
        if (ext.field() == 1 && ext.is(WireType::kVarint)) e.start = as_int64(ext.varint());
        else if (ext.field() == 2 && ext.is(WireType::kVarint)) {
          e.length = as_int64(ext.varint());
          e.has_length = true;
        } else ext.skip();
      }
      if (!e.has_length) e.length = -1;
      s.extents.push_back(e);
    } else {
      r.skip();
    }
  }
}

}  // namespace

BundleHeader parse_bundle_header(io::ByteSpan bytes, uint64_t base) {
  BundleHeader h;
  WireReader r(bytes, base);
  while (r.next()) {
    switch (r.field()) {
      case 1: if (r.is(WireType::kVarint)) { h.num_shards = as_int32(r.varint()); continue; } break;
      case 2: if (r.is(WireType::kVarint)) { h.endianness = as_int32(r.varint()); continue; } break;
      case 3: if (r.is(WireType::kLengthDelimited)) { parse_version(r.message(), h.version); continue; } break;
      default: break;
    }
    r.skip();
  }
  return h;
}

BundleEntry parse_bundle_entry(io::ByteSpan bytes, uint64_t base) {
  BundleEntry e;
  WireReader r(bytes, base);
  while (r.next()) {
    switch (r.field()) {
      case 1: if (r.is(WireType::kVarint)) { e.dtype = as_int32(r.varint()); continue; } break;
      case 2: if (r.is(WireType::kLengthDelimited)) { parse_shape(r.message(), e.shape); continue; } break;
      case 3: if (r.is(WireType::kVarint)) { e.shard_id = as_int32(r.varint()); continue; } break;
      case 4: if (r.is(WireType::kVarint)) { e.offset = as_int64(r.varint()); continue; } break;
      case 5: if (r.is(WireType::kVarint)) { e.size = as_int64(r.varint()); continue; } break;
      case 6: if (r.is(WireType::kFixed32)) { e.crc32c = r.fixed32(); continue; } break;
      case 7:
        if (r.is(WireType::kLengthDelimited)) {
          if (e.slices.size() >= kMaxSlices) throw FormatError("too many tensor slices", r.tag_offset());
          e.slices.emplace_back();
          parse_slice(r.message(), e.slices.back());
          continue;
        }
        break;
      default: break;
    }
    r.skip();
  }
  return e;
}

}  // namespace weightio::tfckpt
