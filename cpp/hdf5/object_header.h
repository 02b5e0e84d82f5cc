// Object headers (HDF5 spec 3.0, section IV.A): version 1 and version 2 ("OHDR"), with
// their continuation blocks, flattened into one list of raw messages.
#pragma once
#include <cstdint>
#include <vector>

#include "hdf5/context.h"

namespace weightio::hdf5 {

// Header message type numbers (spec IV.A.2).
enum MessageType : uint16_t {
  kMsgNil = 0x0000,
  kMsgDataspace = 0x0001,
  kMsgLinkInfo = 0x0002,
  kMsgDatatype = 0x0003,
  kMsgFillValueOld = 0x0004,
  kMsgFillValue = 0x0005,
  kMsgLink = 0x0006,
  kMsgExternalFiles = 0x0007,
  kMsgLayout = 0x0008,
  kMsgBogus = 0x0009,
  kMsgGroupInfo = 0x000A,
  kMsgFilterPipeline = 0x000B,
  kMsgAttribute = 0x000C,
  kMsgComment = 0x000D,
  kMsgModTimeOld = 0x000E,
  kMsgSharedTable = 0x000F,
  kMsgContinuation = 0x0010,
  kMsgSymbolTable = 0x0011,
  kMsgModTime = 0x0012,
  kMsgBTreeK = 0x0013,
  kMsgDriverInfo = 0x0014,
  kMsgAttributeInfo = 0x0015,
  kMsgRefCount = 0x0016,
  kMsgFileSpaceInfo = 0x0017,
};

// Message flag bits.
constexpr uint8_t kMsgFlagShared = 0x02;
constexpr uint8_t kMsgFlagFailIfUnknownWrite = 0x08;
constexpr uint8_t kMsgFlagFailIfUnknown = 0x80;

// (Fields ordered to pack into 32 bytes: a File caches every message of every header.)
struct RawMessage {
  io::ByteSpan data;
  uint64_t offset = 0;  // absolute file offset of the message data (for errors)
  uint16_t type = 0;
  uint16_t creation_order = 0;  // v2 headers that track attribute creation order
  uint8_t flags = 0;
};

// Trivially copyable: the message list is a view of storage the parser's caller owns (a
// File keeps it in its arena for the life of the file).
struct ObjectHeader {
  uint64_t address = 0;
  unsigned version = 0;
  bool attr_creation_order_tracked = false;
  bool attr_creation_order_indexed = false;
  io::Span<const RawMessage> messages;  // continuations left out (and NIL messages, in a File's cache)

  const RawMessage* find(uint16_t type) const {
    for (const auto& m : messages)
      if (m.type == type) return &m;
    return nullptr;
  }
};

// Parses the header at `address`. Its messages are stored in `storage` (cleared first; a
// caller parsing many headers reuses one) and stay valid until `storage` changes.
ObjectHeader read_object_header(const Context& ctx, uint64_t address, std::vector<RawMessage>& storage);

}  // namespace weightio::hdf5
