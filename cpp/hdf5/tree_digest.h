// What a loader sees of a subtree, as one byte string: for checking cheaply that a file is
// laid out as one read before (weightio.keras replays a remembered load only then).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "hdf5/file.h"

namespace weightio::hdf5 {

struct TreeDigest {
  // Equal for two subtrees exactly when these are: every object reached through hard links
  // (the walk: paths in name order and kinds), every attribute of every group (name, type,
  // shape and decoded value), and every dataset's shape, element type, bfloat16 tag and, for
  // datasets declaring more than 4 GiB, stored size (Keras's "shape bomb" rule). Not the
  // objects' addresses, nor the datasets' bytes.
  std::string digest;
  std::vector<uint64_t> datasets;  // the datasets' addresses, in walk order
  Walk walk;
};

TreeDigest digest_tree(const File& file, uint64_t start);

}  // namespace weightio::hdf5
