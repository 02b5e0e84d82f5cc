#include "hdf5/superblock.h"

#include <cstring>

namespace weightio::hdf5 {

namespace {
constexpr uint8_t kSignature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};

uint64_t find_signature(io::ByteSpan bytes) {
  for (uint64_t at = 0; bytes.contains(at, 8); at = at == 0 ? 512 : at * 2) {
    if (std::memcmp(bytes.data() + at, kSignature, 8) == 0) return at;
  }
  throw FormatError("not an HDF5 file (no superblock signature found)");
}

void check_size(unsigned size, const char* what, uint64_t offset) {
  if (size != 2 && size != 4 && size != 8)
    throw FormatError(std::string("unsupported ") + what + " " + std::to_string(size), offset);
}
}  // namespace

Superblock read_superblock(Context& ctx) {
  Superblock sb;
  sb.location = find_signature(ctx.bytes());
  io::Cursor c(ctx.bytes(), 0, static_cast<size_t>(sb.location) + 8);
  sb.version = c.u8();
  if (sb.version <= 1) {
    c.skip(3);  // free-space, root symbol table entry and reserved versions
    c.skip(1);  // shared header message format version
    sb.sizeof_offsets = c.u8();
    sb.sizeof_lengths = c.u8();
    check_size(sb.sizeof_offsets, "size of offsets", c.file_offset());
    check_size(sb.sizeof_lengths, "size of lengths", c.file_offset());
    c.skip(1);
    c.skip(4);  // group leaf / internal node K
    c.skip(4);  // file consistency flags
    if (sb.version == 1) c.skip(4);  // indexed storage internal node K + reserved
    sb.base_address = c.address(sb.sizeof_offsets);
    c.address(sb.sizeof_offsets);  // free-space info (unused)
    sb.eof_address = c.address(sb.sizeof_offsets);
    c.address(sb.sizeof_offsets);  // driver information block (multi/family drivers only)
    // Root group symbol table entry.
    c.address(sb.sizeof_offsets);  // link name offset
    sb.root_object_header = c.address(sb.sizeof_offsets);
    uint32_t cache_type = c.u32();
    c.skip(4);
    if (cache_type == 1) {
      sb.root_btree = c.address(sb.sizeof_offsets);
      sb.root_heap = c.address(sb.sizeof_offsets);
    }
  } else if (sb.version == 2 || sb.version == 3) {
    size_t start = static_cast<size_t>(sb.location);
    sb.sizeof_offsets = c.u8();
    sb.sizeof_lengths = c.u8();
    check_size(sb.sizeof_offsets, "size of offsets", c.file_offset());
    check_size(sb.sizeof_lengths, "size of lengths", c.file_offset());
    c.skip(1);  // file consistency flags
    sb.base_address = c.address(sb.sizeof_offsets);
    sb.extension_address = c.address(sb.sizeof_offsets);
    sb.eof_address = c.address(sb.sizeof_offsets);
    sb.root_object_header = c.address(sb.sizeof_offsets);
    verify_checksum_at(c, start, "superblock");
  } else {
    throw UnsupportedFeatureError("superblock version " + std::to_string(sb.version));
  }
  ctx.set_sizes(sb.sizeof_offsets, sb.sizeof_lengths);
  // Like the HDF5 library, addresses are relative to where the superblock was found.
  ctx.set_base(sb.location);
  if (sb.root_object_header == io::kUndefinedAddress) throw FormatError("superblock has no root group", sb.location);
  // Like the HDF5 library: a file shorter than the end-of-file address it declares was cut.
  // (h5py-written files with a user block store it as an absolute size.)
  if (sb.eof_address != io::kUndefinedAddress && sb.eof_address > ctx.bytes().size())
    throw FormatError("truncated file: it declares " + std::to_string(sb.eof_address) + " bytes, has " +
                          std::to_string(ctx.bytes().size()),
                      sb.location);
  return sb;
}

}  // namespace weightio::hdf5
