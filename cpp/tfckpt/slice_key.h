// The table key under which a bundle stores one slice of a partitioned tensor:
// tensorflow/core/util/saved_tensor_slice_util.cc EncodeTensorNameSlice, built from
// OrderedCode (tensorflow/core/lib/strings/ordered_code.cc):
//   WriteNumIncreasing(0), WriteString(name), WriteNumIncreasing(rank),
//   then per dimension WriteSignedNumIncreasing(start), WriteSignedNumIncreasing(length)
// where a whole-dimension extent is start 0, length -1.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace weightio::tfckpt {

void ordered_write_num_increasing(std::string& dst, uint64_t v);
void ordered_write_string(std::string& dst, const std::string& s);
void ordered_write_signed_num_increasing(std::string& dst, int64_t v);

std::string encode_tensor_name_slice(const std::string& name, const std::vector<int64_t>& starts,
                                     const std::vector<int64_t>& lengths);

}  // namespace weightio::tfckpt
