#include "convert/hyperslab.h"

#include <cstring>

namespace weightio::convert {

void copy_box(const uint8_t* src, const Box& src_box, const ElementType& from, uint8_t* dst, const Box& dst_box,
              const ElementType& to, const std::vector<uint64_t>& count) {
  const size_t rank = count.size();
  for (uint64_t c : count)
    if (c == 0) return;
  if (rank == 0) return convert(src, from, dst, to, 1);
  const std::vector<uint64_t>& sd = *src_box.dims;
  const std::vector<uint64_t>& dd = *dst_box.dims;
  // Strides in elements.
  std::vector<uint64_t> ss(rank), ds(rank);
  ss[rank - 1] = ds[rank - 1] = 1;
  for (size_t d = rank - 1; d-- > 0;) {
    ss[d] = ss[d + 1] * sd[d + 1];
    ds[d] = ds[d + 1] * dd[d + 1];
  }
  // The innermost run: merge trailing dimensions the box covers whole in both arrays.
  size_t inner = rank - 1;
  uint64_t run = count[inner];
  while (inner > 0 && count[inner] == sd[inner] && count[inner] == dd[inner]) {
    --inner;
    run *= count[inner];
  }
  uint64_t src_base = 0, dst_base = 0;
  for (size_t d = 0; d < rank; ++d) {
    src_base += src_box.start[d] * ss[d];
    dst_base += dst_box.start[d] * ds[d];
  }
  // Odometer over the dimensions outside the run.
  std::vector<uint64_t> idx(inner, 0);
  while (true) {
    uint64_t so = src_base, dof = dst_base;
    for (size_t d = 0; d < inner; ++d) {
      so += idx[d] * ss[d];
      dof += idx[d] * ds[d];
    }
    convert(src + so * from.size, from, dst + dof * to.size, to, static_cast<size_t>(run));
    size_t d = inner;
    while (d > 0) {
      --d;
      if (++idx[d] < count[d]) break;
      idx[d] = 0;
      if (d == 0) return;
    }
    if (inner == 0) return;
  }
}

void fill_elements(uint8_t* dst, const uint8_t* value, size_t size, uint64_t n) {
  bool zero = true;
  for (size_t k = 0; k < size; ++k) zero = zero && value[k] == 0;
  if (zero) {
    std::memset(dst, 0, static_cast<size_t>(n * size));
    return;
  }
  for (uint64_t i = 0; i < n; ++i) std::memcpy(dst + i * size, value, size);
}

}  // namespace weightio::convert
