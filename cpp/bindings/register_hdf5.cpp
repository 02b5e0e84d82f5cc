// Python bindings of the native HDF5 reader: H5File (object-address based; the h5py-like
// classes live in weightio/file.py) and the mapping it reads from (buffer protocol, so
// zero-copy numpy views keep the mapping alive).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <map>
#include <memory>
#include <optional>

#include "bindings/element_types.h"
#include "bindings/file_identity.h"
#include "bindings/output_buffers.h"
#include "bindings/read_ahead.h"
#include "hdf5/file.h"
#include "hdf5/tree_digest.h"
#include "io/mapped_file.h"
#include "io/parallel.h"

namespace py = pybind11;
using namespace weightio;

namespace {

// The bytes a file is read from, exported read-only through the buffer protocol.
struct Mapping {
  std::shared_ptr<const io::MappedFile> map;
};

const char* kind_name(hdf5::ObjectKind k) {
  switch (k) {
    case hdf5::ObjectKind::kGroup: return "group";
    case hdf5::ObjectKind::kDataset: return "dataset";
    case hdf5::ObjectKind::kDatatype: return "datatype";
  }
  return "?";
}

const char* layout_name(hdf5::Layout::Class c) {
  switch (c) {
    case hdf5::Layout::Class::kCompact: return "compact";
    case hdf5::Layout::Class::kContiguous: return "contiguous";
    case hdf5::Layout::Class::kChunked: return "chunked";
    case hdf5::Layout::Class::kVirtual: return "virtual";
  }
  return "?";
}

const char* index_name(hdf5::Layout::Index i) {
  switch (i) {
    case hdf5::Layout::Index::kBTreeV1: return "btree_v1";
    case hdf5::Layout::Index::kSingleChunk: return "single_chunk";
    case hdf5::Layout::Index::kImplicit: return "implicit";
    case hdf5::Layout::Index::kFixedArray: return "fixed_array";
    case hdf5::Layout::Index::kExtensibleArray: return "extensible_array";
    case hdf5::Layout::Index::kBTreeV2: return "btree_v2";
  }
  return "?";
}

// Names are bytes in the file; like h5py, decode them as UTF-8 (undecodable bytes escaped).
py::str decode_name(std::string_view s) {
  PyObject* o = PyUnicode_DecodeUTF8(s.data(), static_cast<py::ssize_t>(s.size()), "surrogateescape");
  if (!o) throw py::error_already_set();
  return py::reinterpret_steal<py::str>(o);
}

py::tuple link_tuple(const hdf5::Link& l) {
  const char* type = l.type == hdf5::Link::Type::kHard ? "hard" : l.type == hdf5::Link::Type::kSoft ? "soft" : "external";
  py::object addr = l.type == hdf5::Link::Type::kHard ? py::object(py::int_(l.address)) : py::object(py::none());
  return py::make_tuple(decode_name(l.name), type, addr, decode_name(l.target), decode_name(l.external_file));
}

// Re-throws `e` as the same weightio error type with `prefix` in front of its message.
[[noreturn]] void rethrow_with_context(std::exception_ptr e, const std::string& prefix) {
  try {
    std::rethrow_exception(e);
  } catch (const ChecksumError& x) {
    throw ChecksumError(prefix + x.what());
  } catch (const FormatError& x) {
    throw FormatError(prefix + x.what());
  } catch (const UnsupportedFeatureError& x) {
    throw UnsupportedFeatureError(prefix + x.what());
  } catch (const NotFoundError& x) {
    throw NotFoundError(prefix + x.what());
  } catch (const Error& x) {
    throw Error(prefix + x.what());
  }
}

using io::default_threads;
using io::parallel_for;

// Storage size, or 0 when the chunk index cannot be read (the read reports that).
uint64_t problem_free_storage_size(const hdf5::Dataset& ds) {
  try {
    return ds.storage_size();
  } catch (const Error&) {
    return 0;
  }
}

class H5File {
 public:
  explicit H5File(const std::string& path) {
    std::shared_ptr<const io::MappedFile> map;
    {
      py::gil_scoped_release release;
      map = std::make_shared<const io::MappedFile>(path);
    }
    init(std::move(map));
  }
  // Reads from any object with the buffer protocol (e.g. a mapped zip member).
  H5File(py::buffer buffer, const std::string& name) {
    py::buffer_info info = buffer.request();
    auto owner = std::shared_ptr<void>(new py::object(buffer), [](void* p) {
      py::gil_scoped_acquire gil;
      delete static_cast<py::object*>(p);
    });
    auto map = std::make_shared<io::MappedFile>(static_cast<const uint8_t*>(info.ptr),
                                                static_cast<size_t>(info.size * info.itemsize), owner);
    (void)name;
    init(std::move(map));
  }

  const hdf5::File& file() const { return *file_; }
  const uint8_t* mapped_data() const { return map_->data(); }
  const io::MappedFile& map() const { return *map_; }
  Mapping mapping() const { return Mapping{map_}; }

  py::list links(uint64_t group) const {
    const hdf5::GroupLinks* ls;
    {
      py::gil_scoped_release release;
      ls = &file_->links(group);
    }
    py::list out;
    for (const auto& l : ls->links) out.append(link_tuple(l));
    return out;
  }

  py::list walk(uint64_t start) const {
    hdf5::Walk w;
    {
      py::gil_scoped_release release;
      w = file_->walk(start);
    }
    py::list out;
    for (const auto& e : w.entries) out.append(py::make_tuple(decode_name(w.path(e)), kind_name(e.kind), e.address));
    return out;
  }

  // Every dataset below `start`, read in one parallel pass: {"/path": array}. With
  // bomb_floor > 0, a dataset declaring more than bomb_floor bytes and more than
  // max_expansion times what it stores is refused before anything is allocated.
  py::dict load_all(uint64_t start, py::object threads, uint64_t bomb_floor, uint64_t max_expansion) const {
    hdf5::Walk w;
    {
      py::gil_scoped_release release;
      w = file_->walk(start);
    }
    std::vector<uint64_t> addresses;
    std::vector<std::string_view> names;  // into w.paths
    addresses.reserve(w.entries.size());
    names.reserve(w.entries.size());
    for (const auto& e : w.entries) {
      if (e.kind != hdf5::ObjectKind::kDataset) continue;
      addresses.push_back(e.address);
      names.push_back(w.slash_path(e));
    }
    if (bomb_floor > 0) {
      for (size_t i = 0; i < addresses.size(); ++i) {
        const hdf5::Dataset& ds = file_->dataset(addresses[i]);
        uint64_t declared = ds.num_elements() * ds.type().size;
        if (declared > bomb_floor && declared / std::max<uint64_t>(max_expansion, 1) > ds.storage_size())
          throw FormatError("'" + std::string(names[i]) + "' declares " + std::to_string(declared) +
                            " bytes but stores only " + std::to_string(ds.storage_size()) +
                            ": refusing a potential shape/decompression bomb");
      }
    }
    std::vector<py::object> arrays = read_many_impl(addresses, names, nullptr, nullptr, threads);
    py::dict out;
    for (size_t i = 0; i < names.size(); ++i) {
      py::str key = decode_name(names[i]);
      if (PyDict_SetItem(out.ptr(), key.ptr(), arrays[i].ptr()) != 0) throw py::error_already_set();
    }
    return out;
  }

  py::list attributes(uint64_t object) const {
    std::vector<hdf5::Attribute> attrs = file_->attributes(object);
    py::list out;
    for (const auto& a : attrs) {
      py::tuple shape = py::cast(a.space.dims);
      if (a.space.kind == hdf5::Dataspace::Kind::kNull) {
        out.append(py::make_tuple(decode_name(a.name), "null", a.vlen_string ? "O" : a.type.numpy_typestr(), shape,
                                  py::none()));
      } else if (a.vlen_string) {
        py::list strings;  // decoded here: h5py returns str for variable-length string attributes
        for (const auto& s : a.strings) strings.append(decode_name(s));
        out.append(py::make_tuple(decode_name(a.name), a.type.charset == 1 ? "vstr-utf8" : "vstr-ascii", "O", shape,
                                  strings));
      } else {
        out.append(py::make_tuple(decode_name(a.name), "raw", a.type.numpy_typestr(), shape,
                                  py::bytes(reinterpret_cast<const char*>(a.raw.data()), a.raw.size())));
      }
    }
    return out;
  }

  py::dict dataset_info(uint64_t address) const {
    const hdf5::Dataset* ds = &file_->dataset(address);
    py::dict d;
    const auto& sp = ds->space();
    d["shape"] = py::tuple(py::cast(sp.dims));
    py::list maxshape;
    for (uint64_t m : sp.maxdims) maxshape.append(m == hdf5::Dataspace::kUnlimited ? py::object(py::none()) : py::object(py::int_(m)));
    d["maxshape"] = py::tuple(maxshape);
    d["space"] = sp.kind == hdf5::Dataspace::Kind::kNull ? "null" : sp.kind == hdf5::Dataspace::Kind::kScalar ? "scalar" : "simple";
    d["typestr"] = ds->type().numpy_typestr();
    d["type"] = ds->type().describe();
    d["opaque_tag"] = ds->type().tag;
    d["itemsize"] = ds->type().size;
    d["layout"] = layout_name(ds->layout().cls);
    if (ds->layout().cls == hdf5::Layout::Class::kChunked) {
      d["chunks"] = py::tuple(py::cast(ds->layout().chunk_dims));
      d["chunk_index"] = index_name(ds->layout().index);
    } else {
      d["chunks"] = py::none();
      d["chunk_index"] = py::none();
    }
    py::list filters;
    for (const auto& f : ds->pipeline().filters)
      filters.append(py::make_tuple(f.id, hdf5::filter_name(f), f.flags, py::cast(f.client_data)));
    d["filters"] = filters;
    const auto& fill = ds->fill();
    d["storage_size"] = problem_free_storage_size(*ds);
    py::list external;
    if (ds->has_external_storage()) {
      try {
        for (const auto& e : ds->external_files())
          external.append(py::make_tuple(decode_name(e.name), e.offset, e.size));
      } catch (const FormatError&) {
      }
    }
    d["external"] = external;
    d["fill"] = fill.defined ? py::object(py::bytes(reinterpret_cast<const char*>(fill.value.data()), fill.value.size()))
                             : py::object(py::none());
    std::string problem;
    try {
      ds->check_readable();
    } catch (const UnsupportedFeatureError& e) {
      problem = e.what();
    }
    d["unsupported"] = problem.empty() ? py::object(py::none()) : py::object(py::str(problem));
    // Contiguous storage that cannot hold the declared extent is a FormatError now, before
    // any caller allocates an output of that (possibly huge, mutated) shape.
    io::ByteSpan span;
    if (problem.empty()) ds->stored_span(&span);
    return d;
  }

  // Reads a box of one dataset into `out` (C-contiguous, shape == count).
  void read(uint64_t address, py::array out, const std::vector<uint64_t>& start, const std::vector<uint64_t>& count,
            const std::string& source) const {
    const hdf5::Dataset* ds = &file_->dataset(address);
    convert::ElementType to = bindings::element_type_of(out.dtype());
    check_output(out, count);
    uint8_t* dst = static_cast<uint8_t*>(out.mutable_data());
    py::gil_scoped_release release;
    if (source.empty()) {
      ds->read(start, count, dst, to);
    } else {
      read_as(*ds, start, count, dst, to, convert::ElementType::from_typestr(source));
    }
  }

  // Reads whole datasets into new arrays, in parallel, without the GIL. `dtypes[i]` None
  // keeps the stored type; `sources[i]` non-empty reinterprets the stored elements
  // (e.g. "bfloat16" for Keras's 2-byte opaque bfloat16).
  //
  // `outs` (None, or a list of None or writeable C-contiguous arrays): dataset i is read
  // into outs[i] (its dtype is the target type, its size the dataset's) instead of a new
  // array, e.g. straight into a framework's parameter memory. The call still changes
  // nothing on failure: every given output is written only after everything that can fail
  // has succeeded (datasets that need decoding are read into temporaries first; one stored
  // block is checked before and then cannot fail).
  py::list read_many(const std::vector<uint64_t>& addresses, const std::vector<std::string>& names,
                     const std::vector<py::object>& dtypes, const std::vector<std::string>& sources,
                     py::object threads, py::object outs) const {
    size_t n = addresses.size();
    if (names.size() != n || dtypes.size() != n || sources.size() != n) throw std::invalid_argument("length mismatch");
    std::vector<py::object> out_list;
    if (!outs.is_none()) {
      out_list = outs.cast<std::vector<py::object>>();
      if (out_list.size() != n) throw std::invalid_argument("length mismatch");
    }
    std::vector<std::string_view> name_views(names.begin(), names.end());
    std::vector<py::object> arrays = read_many_impl(addresses, name_views, dtypes.data(), sources.data(), threads,
                                                    out_list.empty() ? nullptr : out_list.data());
    py::list out(n);
    for (size_t i = 0; i < n; ++i) out[i] = std::move(arrays[i]);
    return out;
  }

 private:
  // read_many without the Python-facing argument lists: `dtypes` and `sources` may be null
  // (every dataset keeps its stored type, as load_all reads them).
  std::vector<py::object> read_many_impl(const std::vector<uint64_t>& addresses, const std::vector<std::string_view>& names,
                                         const py::object* dtypes, const std::string* sources, py::object threads,
                                         const py::object* outs = nullptr) const {
    size_t n = addresses.size();
    struct Job {
      const hdf5::Dataset* ds = nullptr;
      convert::ElementType from, to;
      py::dtype dtype;
      size_t nbytes = 0;
      uint8_t* out = nullptr;
      uint8_t* given = nullptr;  // the caller's output; `out` is then a temporary, or the same
      bool reinterpret = false;
    };
    std::vector<Job> jobs(n);
    std::map<std::string, py::dtype> dtype_cache;
    unsigned nthreads = threads.is_none() ? default_threads() : threads.cast<unsigned>();
    std::vector<std::exception_ptr> errors;
    // Pass 1: describe every output (where each will live: see OutputBuffers).
    bindings::OutputBuffers buffers;
    for (size_t i = 0; i < n; ++i) {
      try {
        Job& j = jobs[i];
        j.ds = &file_->dataset(addresses[i]);
        j.ds->check_readable();
        const bool has_dtype = dtypes && !dtypes[i].is_none();
        j.reinterpret = sources && !sources[i].empty();
        j.from = j.reinterpret ? convert::ElementType::from_typestr(sources[i]) : j.ds->stored_type();
        if (!j.reinterpret && j.from.kind == convert::Kind::kRaw && j.from.size == 2 &&
            file_->is_tagged_bfloat16(addresses[i]) && (has_dtype || bindings::have_bfloat16())) {
          j.reinterpret = true;
          j.from = convert::ElementType{convert::Kind::kBFloat16, 2, false};
        }
        const bool has_out = outs && !outs[i].is_none();
        py::array given;  // (a default py::array is an empty array, not a null handle)
        if (has_out) given = bindings::whole_output(outs[i], j.ds->num_elements());
        j.dtype = has_out              ? given.dtype()
                  : has_dtype          ? py::dtype::from_args(dtypes[i])
                  : j.reinterpret      ? bindings::dtype_of(j.from)
                                       : cached_dtype(j.ds->type().numpy_typestr(), dtype_cache);
        j.to = bindings::element_type_of(j.dtype);
        if (!convert::can_convert(j.from, j.to))
          throw Error("cannot convert " + j.from.typestr() + " to " + j.to.typestr());
        const uint64_t count = j.ds->num_elements(), itemsize = static_cast<uint64_t>(j.dtype.itemsize());
        if (itemsize != 0 && count > (uint64_t{1} << 62) / itemsize)
          throw Error("the result would take more than 2^62 bytes as " + std::string(py::str(j.dtype)));
        j.nbytes = static_cast<size_t>(count * itemsize);
        if (has_out) {
          j.given = static_cast<uint8_t*>(given.mutable_data());
          // One stored block, read as it is: checked now (bounds, type), it cannot fail
          // later, so it goes straight to the output; anything else gets a temporary.
          io::ByteSpan stored;
          if (!j.reinterpret && j.ds->layout().cls != hdf5::Layout::Class::kChunked) {
            j.ds->check_readable();
            j.ds->stored_span(&stored);
            j.out = j.given;
            continue;
          }
        }
        buffers.plan(j.nbytes);
      } catch (const Error&) {
        rethrow_with_context(std::current_exception(), "'" + std::string(names[i]) + "': ");
      }
    }
    // Pass 2: create the arrays (see OutputBuffers for where they live).
    std::vector<py::object> temporaries;  // the memory of temporaries for the caller's outputs
    std::vector<py::object> results;
    results.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      Job& j = jobs[i];
      if (j.out != nullptr) {  // straight into the caller's output
        results.push_back(outs[i]);
        continue;
      }
      bindings::OutputBuffers::Place at = buffers.place(j.nbytes);
      if (j.given == nullptr) {
        results.push_back(array_over(j.dtype, j.ds->space().dims, at.data, at.owner));
      } else {
        results.push_back(outs[i]);
        temporaries.push_back(std::move(at.owner));
      }
      j.out = at.data;
    }
    auto read_job = [](const Job& j) {
      if (j.reinterpret) {
        std::vector<uint64_t> start(j.ds->space().dims.size(), 0);
        read_as(*j.ds, start, j.ds->space().dims, j.out, j.to, j.from);
      } else {
        j.ds->read_all(j.out, j.to);
      }
    };
    auto rethrow_first = [&] {
      for (size_t i = 0; i < n; ++i)
        if (errors[i]) rethrow_with_context(errors[i], "'" + std::string(names[i]) + "': ");
    };
    {
      py::gil_scoped_release release;
      // Everything but the direct reads into the caller's outputs, which wait until
      // nothing else can fail.
      parallel_for(n, nthreads, [&](size_t i) {
        if (jobs[i].out != jobs[i].given) read_job(jobs[i]);
      }, errors);
    }
    rethrow_first();
    if (outs != nullptr) {
      py::gil_scoped_release release;
      parallel_for(n, nthreads, [&](size_t i) {
        const Job& j = jobs[i];
        if (j.given == nullptr) return;
        if (j.out == j.given) read_job(j);
        else if (j.nbytes != 0) std::memcpy(j.given, j.out, j.nbytes);
      }, errors);
      rethrow_first();
    }
    return results;
  }

  void init(std::shared_ptr<const io::MappedFile> map) {
    map_ = std::move(map);
    py::gil_scoped_release release;
    file_ = std::make_unique<hdf5::File>(map_);
  }

  // A writeable C-order array of `dims` over `data`, which `base` keeps alive. Calls numpy's
  // constructor directly: py::array's builds shape and stride vectors and inspects the
  // base, which showed in load_file's profile of ten thousand small arrays.
  static py::object array_over(const py::dtype& dtype, const std::vector<uint64_t>& dims, uint8_t* data,
                               const py::handle& base) {
    Py_intptr_t shape[hdf5::limits::kMaxRank];
    if (dims.size() > hdf5::limits::kMaxRank) throw FormatError("dataspace rank exceeds 32");
    for (size_t d = 0; d < dims.size(); ++d) shape[d] = static_cast<Py_intptr_t>(dims[d]);
    auto& api = py::detail::npy_api::get();
    constexpr int kFlags = py::detail::npy_api::NPY_ARRAY_C_CONTIGUOUS_ | py::detail::npy_api::NPY_ARRAY_ALIGNED_ |
                           py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
    // NewFromDescr steals the reference to the descriptor.
    auto arr = py::reinterpret_steal<py::object>(api.PyArray_NewFromDescr_(
        api.PyArray_Type_, dtype.inc_ref().ptr(), static_cast<int>(dims.size()), shape, nullptr, data, kFlags, nullptr));
    if (!arr) throw py::error_already_set();
    if (api.PyArray_SetBaseObject_(arr.ptr(), base.inc_ref().ptr()) != 0) throw py::error_already_set();
    return arr;
  }


  static py::dtype cached_dtype(const std::string& typestr, std::map<std::string, py::dtype>& cache) {
    auto it = cache.find(typestr);
    if (it == cache.end()) it = cache.emplace(typestr, py::dtype(typestr)).first;
    return it->second;
  }

  static void check_output(const py::array& out, const std::vector<uint64_t>& count) {
    if (!(out.flags() & py::array::c_style) || !out.writeable()) throw std::invalid_argument("out must be a writeable C-contiguous array");
    if (static_cast<size_t>(out.ndim()) != count.size()) throw std::invalid_argument("out has the wrong rank");
    for (size_t d = 0; d < count.size(); ++d)
      if (static_cast<uint64_t>(out.shape(static_cast<py::ssize_t>(d))) != count[d]) throw std::invalid_argument("out has the wrong shape");
  }

  // Reads stored elements reinterpreted as `source` (same size), then converts to `to`.
  static void read_as(const hdf5::Dataset& ds, const std::vector<uint64_t>& start, const std::vector<uint64_t>& count,
                      uint8_t* out, const convert::ElementType& to, const convert::ElementType& source) {
    convert::ElementType stored = ds.stored_type();
    if (source.size != stored.size) throw Error("cannot reinterpret " + stored.typestr() + " as " + source.typestr());
    if (source == to) {
      convert::ElementType raw{convert::Kind::kRaw, stored.size, false};
      ds.read(start, count, out, raw);
      return;
    }
    uint64_t n = 1;
    for (uint64_t c : count) n *= c;
    std::vector<uint8_t> tmp(static_cast<size_t>(n * stored.size));
    convert::ElementType raw{convert::Kind::kRaw, stored.size, false};
    ds.read(start, count, tmp.data(), raw);
    convert::convert(tmp.data(), source, out, to, static_cast<size_t>(n));
  }

  std::shared_ptr<const io::MappedFile> map_;
  std::unique_ptr<hdf5::File> file_;
};

// The ReadAhead of whole datasets (see bindings/read_ahead.h): each checked and its output
// validated here, with the GIL; the threads then only read.
std::unique_ptr<bindings::ReadAhead> read_ahead(const H5File& file, py::object owner,
                                                const std::vector<uint64_t>& addresses,
                                                const std::vector<py::object>& outs, unsigned threads) {
  if (outs.size() != addresses.size()) throw std::invalid_argument("length mismatch");
  struct Item {
    const hdf5::Dataset* ds = nullptr;
    uint8_t* out = nullptr;
    convert::ElementType to;
  };
  std::vector<Item> items(addresses.size());
  std::vector<py::array> arrays;
  for (size_t i = 0; i < items.size(); ++i) {
    Item& item = items[i];
    item.ds = &file.file().dataset(addresses[i]);
    item.ds->check_readable();
    py::array out = bindings::whole_output(outs[i], item.ds->num_elements());
    arrays.push_back(out);
    item.to = bindings::element_type_of(out.dtype());
    if (!convert::can_convert(item.ds->stored_type(), item.to))
      throw Error("cannot convert " + item.ds->stored_type().typestr() + " to " + item.to.typestr());
    item.out = static_cast<uint8_t*>(out.mutable_data());
  }
  const size_t count = items.size();
  return std::make_unique<bindings::ReadAhead>(
      std::move(owner), std::move(arrays),
      [items = std::move(items)](size_t i) { items[i].ds->read_all(items[i].out, items[i].to); }, count, threads);
}

}  // namespace

void register_hdf5(py::module_& m) {
  py::class_<Mapping>(m, "Mapping", py::buffer_protocol(), "Read-only bytes of an open file (memory-mapped)")
      .def_buffer([](Mapping& mp) {
        return py::buffer_info(const_cast<uint8_t*>(mp.map->data()), 1, py::format_descriptor<uint8_t>::format(), 1,
                               {static_cast<py::ssize_t>(mp.map->size())}, {1}, /*readonly=*/true);
      })
      .def("__len__", [](const Mapping& mp) { return mp.map->size(); })
      .def_property_readonly("is_mapped", [](const Mapping& mp) { return mp.map->is_mapped(); });

  bindings::register_read_ahead(m);

  py::class_<H5File>(m, "H5File", "An HDF5 file parsed natively; objects are addressed by header address")
      .def(py::init<const std::string&>(), py::arg("path"))
      .def(py::init<py::buffer, const std::string&>(), py::arg("buffer"), py::arg("name"))
      .def_property_readonly("path", [](const H5File& f) { return f.file().path(); })
      .def_property_readonly("root", [](const H5File& f) { return f.file().root(); })
      .def_property_readonly(
          "identity", [](const H5File& f) { return bindings::identity_tuple(f.map().identity()); },
          "(device, inode, size, mtime_ns, ctime_ns) of the file as opened (fstat of the mapped "
          "descriptor); None for bytes handed in")
      .def_property_readonly("superblock_version", [](const H5File& f) { return f.file().superblock().version; })
      .def_property_readonly("userblock_size", [](const H5File& f) { return f.file().superblock().location; })
      .def_property_readonly("sizeof_offsets", [](const H5File& f) { return f.file().superblock().sizeof_offsets; })
      .def_property_readonly("sizeof_lengths", [](const H5File& f) { return f.file().superblock().sizeof_lengths; })
      .def("mapping", &H5File::mapping)
      .def("kind", [](const H5File& f, uint64_t a) { return kind_name(f.file().kind(a)); })
      .def("links", &H5File::links)
      .def("link", [](const H5File& f, uint64_t g, const std::string& name) { return link_tuple(f.file().link(g, name)); })
      .def("child", [](const H5File& f, uint64_t g, const std::string& name) -> py::tuple {
        // (link type, address, object kind) of one link of a group, the last two None unless
        // it is a hard link: link and kind in one call, for Group._child.
        const hdf5::Link l = f.file().link(g, name);
        if (l.type != hdf5::Link::Type::kHard)
          return py::make_tuple(l.type == hdf5::Link::Type::kSoft ? "soft" : "external", py::none(), py::none());
        return py::make_tuple("hard", l.address, kind_name(f.file().kind(l.address)));
      })
      .def("hard_group", [](const H5File& f, uint64_t start, const std::string& path) -> py::object {
        // (address, member names in link order) of the group at `path` below `start` where
        // every part of the path is a hard link to a group, as Keras's safe lookups accept;
        // None where anything else is met (an empty part, a missing or soft or external
        // link, a dataset, a problem inside the file), for the caller's own lookup to report.
        // One call for what a Keras store's get() asked in six.
        // (Decided without the GIL; Python objects are made only after it is taken back.)
        const hdf5::GroupLinks* links = nullptr;
        uint64_t group = start;
        try {
          py::gil_scoped_release release;
          bool plain = f.file().kind(group) == hdf5::ObjectKind::kGroup;
          size_t begin = 0;
          while (plain) {
            size_t end = path.find('/', begin);
            if (end == std::string::npos) end = path.size();
            const hdf5::Link* l = end == begin ? nullptr : f.file().links(group).find(std::string_view(path).substr(begin, end - begin));
            plain = l != nullptr && l->type == hdf5::Link::Type::kHard && f.file().kind(l->address) == hdf5::ObjectKind::kGroup;
            if (!plain) break;
            group = l->address;
            if (end == path.size()) break;
            begin = end + 1;
          }
          if (plain) links = &f.file().links(group);
        } catch (const IoError&) {
          throw;
        } catch (const Error&) {
          links = nullptr;
        }
        if (links == nullptr) return py::none();
        py::list names;
        for (const auto& l : links->links) names.append(decode_name(l.name));
        return py::make_tuple(group, names);
      })
      .def("contains", [](const H5File& f, uint64_t start, const std::string& parent, const std::string& leaf) {
        // Group.__contains__: `parent` resolves to a group holding a link named `leaf`. A
        // lookup that fails inside the file answers no, here (Keras asks for many paths that
        // are not there: ~13 us each as a Python exception; as this, ~1 us without raising
        // anything, ~5 us where a problem is met and caught).
        py::gil_scoped_release release;
        try {
          std::optional<uint64_t> group = f.file().find(start, parent);
          return group && f.file().kind(*group) == hdf5::ObjectKind::kGroup && f.file().links(*group).find(leaf) != nullptr;
        } catch (const IoError&) {
          throw;
        } catch (const Error&) {
          return false;
        }
      })
      .def("resolve", [](const H5File& f, uint64_t start, const std::string& path) {
        py::gil_scoped_release release;
        return f.file().resolve(start, path);
      })
      .def("resolve_object", [](const H5File& f, uint64_t start, const std::string& path) {
        // (address, kind): resolve and kind in one call, for the h5py-like f[path].
        uint64_t address;
        hdf5::ObjectKind kind;
        {
          py::gil_scoped_release release;
          address = f.file().resolve(start, path);
          kind = f.file().kind(address);
        }
        return py::make_tuple(address, kind_name(kind));
      })
      .def("resolve_many", [](const H5File& f, uint64_t start, const std::vector<std::string>& paths) {
        std::vector<uint64_t> out(paths.size());
        py::gil_scoped_release release;
        for (size_t i = 0; i < paths.size(); ++i) {
          try {
            out[i] = f.file().resolve(start, paths[i]);
          } catch (const NotFoundError&) {
            throw NotFoundError("'" + paths[i] + "' not found");
          }
        }
        return out;
      })
      .def("is_tagged_bfloat16", [](const H5File& f, uint64_t a) { return f.file().is_tagged_bfloat16(a); })
      .def("walk", &H5File::walk)
      .def("load_all", &H5File::load_all, py::arg("start"), py::arg("threads") = py::none(),
           py::arg("bomb_floor") = 0, py::arg("max_expansion") = 1000)
      .def("attributes", &H5File::attributes)
      .def("dataset_info", &H5File::dataset_info)
      .def("view_info", [](const H5File& f, uint64_t address) {
        // (byte offset or None, shape, typestr): what a zero-copy view needs. None when the
        // data is not one allocated unfiltered block, or is a string whose stored padding
        // differs from what a read returns.
        const hdf5::Dataset* ds = &f.file().dataset(address);
        const auto& type = ds->type();
        py::tuple shape(ds->space().dims.size());
        for (size_t d = 0; d < ds->space().dims.size(); ++d) shape[d] = py::int_(ds->space().dims[d]);
        io::ByteSpan span;
        bool padded = type.cls == hdf5::DataType::Class::kString && type.string_pad != 1;
        bool direct = false;
        try {
          ds->check_readable();
          direct = !padded && ds->space().kind != hdf5::Dataspace::Kind::kNull && ds->stored_span(&span);
        } catch (const UnsupportedFeatureError&) {
        }
        py::object offset = direct ? py::object(py::int_(static_cast<uint64_t>(span.data() - f.mapped_data())))
                                   : py::object(py::none());
        return py::make_tuple(offset, shape, type.numpy_typestr());
      })
      .def("read", &H5File::read, py::arg("address"), py::arg("out"), py::arg("start"), py::arg("count"),
           py::arg("source") = "")
      .def("read_ahead", [](py::object self, const std::vector<uint64_t>& addresses, const std::vector<py::object>& outs,
                            unsigned threads) {
        const H5File& f = self.cast<const H5File&>();
        return read_ahead(f, self, addresses, outs, threads);
      }, py::arg("addresses"), py::arg("outs"), py::arg("threads"),
         "Starts reading whole datasets into `outs` (their stored types or conversions of them) with "
         "`threads` threads of its own; ReadAhead.finish() waits for them")
      .def("read_many", &H5File::read_many, py::arg("addresses"), py::arg("names"), py::arg("dtypes"),
           py::arg("sources"), py::arg("threads") = py::none(), py::arg("outs") = py::none())
      .def("layout", [](const H5File& f, uint64_t start, bool with_paths) {
        // (digest bytes, dataset addresses, dataset paths or None): see hdf5/tree_digest.h.
        hdf5::TreeDigest layout;
        {
          py::gil_scoped_release release;
          layout = hdf5::digest_tree(f.file(), start);
        }
        py::object paths = py::none();
        if (with_paths) {
          py::list names;
          for (const auto& e : layout.walk.entries)
            if (e.kind == hdf5::ObjectKind::kDataset) names.append(decode_name(layout.walk.slash_path(e)));
          paths = names;
        }
        return py::make_tuple(py::bytes(layout.digest), py::cast(layout.datasets), paths);
      }, py::arg("start"), py::arg("with_paths") = false)
      .def("datasets", [](const H5File& f, uint64_t start) {
        // (path, address, shape, typestr, storage size) of every dataset below `start`.
        hdf5::Walk w;
        {
          py::gil_scoped_release release;
          w = f.file().walk(start);
        }
        py::list out;
        for (const auto& e : w.entries) {
          if (e.kind != hdf5::ObjectKind::kDataset) continue;
          const hdf5::Dataset* ds = &f.file().dataset(e.address);
          // Keras's "shape bomb" rule needs the stored size only for datasets declaring > 4 GiB.
          uint64_t declared = ds->num_elements() * ds->type().size;
          uint64_t stored = declared > (uint64_t{1} << 32) ? problem_free_storage_size(*ds) : declared;
          py::tuple shape(ds->space().dims.size());
          for (size_t d = 0; d < ds->space().dims.size(); ++d) shape[d] = py::int_(ds->space().dims[d]);
          out.append(py::make_tuple(decode_name(w.slash_path(e)), e.address, shape, ds->type().numpy_typestr(), stored));
        }
        return out;
      });
}
