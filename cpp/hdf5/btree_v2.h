// Version 2 B-trees (HDF5 spec 3.0, III.A.2): header "BTHD", internal nodes "BTIN" and
// leaf nodes "BTLF". Used for dense link and attribute indexes and for chunk indexes.
#pragma once
#include <cstdint>
#include <functional>
#include <set>
#include <vector>

#include "hdf5/context.h"

namespace weightio::hdf5 {

class BTreeV2 {
 public:
  BTreeV2(const Context& ctx, uint64_t address);

  unsigned type() const { return type_; }
  uint16_t record_size() const { return record_size_; }
  uint64_t total_records() const { return total_records_; }
  // Calls `visit` with a cursor over each record, in key order.
  void for_each(const std::function<void(io::Cursor&)>& visit) const;

 private:
  void visit_node(uint64_t address, unsigned depth, uint64_t nrec, const std::function<void(io::Cursor&)>& visit,
                  size_t& visited, std::set<uint64_t>& seen) const;

  const Context& ctx_;
  unsigned type_ = 0;
  uint32_t node_size_ = 0;
  uint16_t record_size_ = 0;
  unsigned depth_ = 0;
  uint64_t root_ = io::kUndefinedAddress;
  uint64_t root_records_ = 0;
  uint64_t total_records_ = 0;
  // Per depth: maximum records in one node, and bytes used to store record counts.
  std::vector<uint64_t> max_records_;
  std::vector<uint64_t> cum_max_records_;
  std::vector<unsigned> cum_records_size_;
  unsigned max_records_size_ = 0;
};

}  // namespace weightio::hdf5
