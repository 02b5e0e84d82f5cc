// Datasets: the header messages that describe one (dataspace, datatype, layout, filter
// pipeline, fill value) and reading a box of its elements from compact, contiguous or
// chunked storage, converted to the caller's element type.
#pragma once
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "convert/element_type.h"
#include "hdf5/btree_v1.h"
#include "hdf5/messages/dataspace.h"
#include "hdf5/messages/datatype.h"
#include "hdf5/messages/fill_value.h"
#include "hdf5/messages/filter_pipeline.h"
#include "hdf5/messages/layout.h"
#include "hdf5/object_header.h"

namespace weightio::hdf5 {

bool is_dataset(const ObjectHeader& header);

class Dataset {
 public:
  Dataset(const Context& ctx, const ObjectHeader& header);

  const Dataspace& space() const { return space_; }
  const DataType& type() const { return type_; }
  const Layout& layout() const { return layout_; }
  const FilterPipeline& pipeline() const { return pipeline_; }
  const FillValue& fill() const { return fill_; }
  bool has_external_storage() const { return external_; }
  // External Data Files message 0x0007 (spec IV.A.2.h): the files that hold the data, as
  // (name, offset, size) like h5py's Dataset.external. Read only to be named in errors.
  struct ExternalFile {
    std::string name;
    uint64_t offset, size;
  };
  std::vector<ExternalFile> external_files() const;
  uint64_t num_elements() const { return space_.num_elements(); }

  // The stored element type; throws UnsupportedFeatureError for types the native reader
  // does not read (compound, variable-length, reference, array, non-IEEE numbers).
  convert::ElementType stored_type() const;
  // Throws UnsupportedFeatureError when reading would need something not implemented.
  void check_readable() const;

  // Reads the box [start, start + count) into `out`, row-major, as elements of `to`.
  void read(const std::vector<uint64_t>& start, const std::vector<uint64_t>& count, uint8_t* out,
            const convert::ElementType& to) const;
  void read_all(uint8_t* out, const convert::ElementType& to) const;

  // The stored bytes when the data is one allocated, unfiltered block in the file
  // (contiguous or compact); false otherwise.
  bool stored_span(io::ByteSpan* out) const;
  // Bytes the data occupies in the file (0 when nothing was written), like
  // H5Dget_storage_size: what a "shape bomb" check compares the declared size with.
  uint64_t storage_size() const;
  // Absolute file offset of the contiguous data, for zero-copy views.
  uint64_t contiguous_file_offset() const;

 private:
  void read_stored(const std::vector<uint64_t>& start, const std::vector<uint64_t>& count, uint8_t* out,
                   const convert::ElementType& to) const;
  const std::vector<ChunkRecord>& chunks() const;
  void read_chunked(const std::vector<uint64_t>& start, const std::vector<uint64_t>& count, uint8_t* out,
                    const convert::ElementType& to) const;
  void fill_output(uint8_t* out, uint64_t n, const convert::ElementType& to) const;

  const Context& ctx_;
  uint64_t address_;
  Dataspace space_;
  DataType type_;
  Layout layout_;
  FilterPipeline pipeline_;
  FillValue fill_;
  bool external_ = false;
  RawMessage external_message_;
  mutable std::once_flag chunks_once_;
  mutable std::vector<ChunkRecord> chunks_;
};

}  // namespace weightio::hdf5
