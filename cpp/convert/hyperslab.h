// Copying rectangular boxes between row-major arrays, converting elements on the way.
#pragma once
#include <cstdint>
#include <vector>

#include "convert/element_type.h"

namespace weightio::convert {

struct Box {
  const std::vector<uint64_t>* dims;   // extent of the whole array
  std::vector<uint64_t> start;         // first element of the box in that array
};

// Copies a box of `count` elements per dimension from `src` (elements of `from`) to `dst`
// (elements of `to`). Trailing dimensions that are whole in both arrays merge into one run.
void copy_box(const uint8_t* src, const Box& src_box, const ElementType& from, uint8_t* dst, const Box& dst_box,
              const ElementType& to, const std::vector<uint64_t>& count);

// Repeats one element (`value`, `size` bytes) `n` times.
void fill_elements(uint8_t* dst, const uint8_t* value, size_t size, uint64_t n);

}  // namespace weightio::convert
