// Python bindings of the TensorFlow checkpoint (tensor bundle) reader: TfBundle over one
// checkpoint prefix, and ShardBuffer, a data shard's mapped bytes exported read-only through
// the buffer protocol (zero-copy numpy views keep the mapping alive). The reader-like API
// users see lives in weightio/tf.py; names cross this boundary as bytes (keys are bytes in
// the file), numpy dtypes are chosen there.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <exception>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "bindings/element_types.h"
#include "bindings/file_identity.h"
#include "bindings/output_buffers.h"
#include "bindings/read_ahead.h"
#include "io/errors.h"
#include "io/mapped_file.h"
#include "io/parallel.h"
#include "tfckpt/bundle_reader.h"

namespace py = pybind11;
using namespace weightio;

namespace {

struct ShardBuffer {
  std::shared_ptr<const io::MappedFile> map;
};

py::str decode_utf8(const std::string& s) {
  PyObject* o = PyUnicode_DecodeUTF8(s.data(), static_cast<py::ssize_t>(s.size()), "surrogateescape");
  if (!o) throw py::error_already_set();
  return py::reinterpret_steal<py::str>(o);
}

py::tuple shape_tuple(const std::vector<int64_t>& dims) {
  py::tuple t(dims.size());
  for (size_t i = 0; i < dims.size(); ++i) t[i] = py::int_(dims[i]);
  return t;
}

class TfBundle {
 public:
  explicit TfBundle(const std::string& prefix) {
    py::gil_scoped_release release;
    auto index = std::make_shared<const io::MappedFile>(prefix + ".index");
    reader_ = std::make_unique<tfckpt::BundleReader>(std::move(index), prefix);
  }

  const tfckpt::BundleReader& reader() const { return *reader_; }

  // [(name bytes, dtype enum, shape tuple, partitioned)] in key order.
  py::list variables() const {
    py::list out;
    for (const std::string& name : reader_->names()) {
      const tfckpt::BundleEntry& e = *reader_->find(name);
      out.append(py::make_tuple(py::bytes(name), e.dtype, shape_tuple(e.shape.dims), !e.slices.empty()));
    }
    return out;
  }

  py::dict info(const std::string& name) const {
    const tfckpt::BundleEntry& e = reader_->entry(name);
    py::dict d;
    d["dtype"] = e.dtype;
    d["shape"] = shape_tuple(e.shape.dims);
    d["shard_id"] = e.shard_id;
    d["offset"] = e.offset;
    d["size"] = e.size;
    d["crc32c"] = e.crc32c;
    py::list slices;
    for (const auto& s : e.slices) {
      py::list extents;
      for (const auto& x : s.extents)
        extents.append(py::make_tuple(x.start, x.has_length ? py::object(py::int_(x.length)) : py::object(py::none())));
      slices.append(extents);
    }
    d["slices"] = slices;
    return d;
  }

  ShardBuffer shard(int32_t id) const {
    py::gil_scoped_release release;
    return ShardBuffer{reader_->shard(id)};
  }

  // (shard buffer, byte offset, byte count) when the stored bytes can be viewed as they are.
  py::object direct(const std::string& name, bool verify) const {
    io::ByteSpan span;
    std::shared_ptr<const io::MappedFile> keep;
    bool ok;
    {
      py::gil_scoped_release release;
      ok = reader_->direct_span(name, verify, &span, &keep);
    }
    if (!ok) return py::none();
    return py::make_tuple(ShardBuffer{keep}, static_cast<uint64_t>(span.data() - keep->data()), span.size());
  }

  py::list read_strings(const std::string& name, bool verify) const {
    tfckpt::StringTensor st;
    {
      py::gil_scoped_release release;
      st = reader_->read_strings(name, verify);
    }
    py::list out(st.elements.size());
    for (size_t i = 0; i < st.elements.size(); ++i)
      out[i] = py::bytes(reinterpret_cast<const char*>(st.elements[i].data()), st.elements[i].size());
    return out;
  }

  // Whole fixed-size tensors into new arrays (or into `outs`), in parallel without the GIL.
  // `dtypes[i]` is the output dtype; `raws[i]` says it is the stored type itself (copied as
  // stored, byte-swapped if needed), otherwise the elements are converted to it.
  py::list read_many(const std::vector<std::string>& names, const std::vector<py::dtype>& dtypes,
                     const std::vector<bool>& raws, py::object threads, bool verify, py::object outs) const {
    const size_t n = names.size();
    if (dtypes.size() != n || raws.size() != n) throw std::invalid_argument("length mismatch");
    std::vector<py::object> given(n, py::none());
    if (!outs.is_none()) {
      given = outs.cast<std::vector<py::object>>();
      if (given.size() != n) throw std::invalid_argument("length mismatch");
    }
    struct Job {
      const tfckpt::BundleEntry* entry = nullptr;
      convert::ElementType to;
      size_t nbytes = 0;
      uint8_t* out = nullptr;
    };
    std::vector<Job> jobs(n);
    for (size_t i = 0; i < n; ++i) {
      Job& j = jobs[i];
      j.entry = &reader_->entry(names[i]);
      const tfckpt::DTypeInfo* info = &readable_fixed_size(names[i], *j.entry, "read_many");
      const uint64_t count = tfckpt::BundleReader::num_elements(*j.entry);
      if (raws[i]) {
        if (static_cast<uint32_t>(dtypes[i].itemsize()) != info->size)
          throw std::invalid_argument("raw output dtype of the wrong size");
        j.to = info->element;
      } else {
        j.to = bindings::element_type_of(dtypes[i]);
        if (!convert::can_convert(info->element, j.to))
          throw Error("cannot convert " + std::string(info->name) + " to " + j.to.typestr());
      }
      if (count > (uint64_t{1} << 62) / std::max<uint32_t>(1, j.to.size))
        throw FormatError(reader_->prefix() + ": tensor '" + names[i] + "' is too large to read");
      j.nbytes = static_cast<size_t>(count) * static_cast<size_t>(dtypes[i].itemsize());
      if (!given[i].is_none()) {
        if (!py::isinstance<py::array>(given[i])) throw std::invalid_argument("outs items must be numpy arrays");
        auto arr = py::reinterpret_borrow<py::array>(given[i]);
        check_output(arr, j.entry->shape.dims, dtypes[i]);
      }
    }
    // Where each new output lives: see OutputBuffers.
    bindings::OutputBuffers buffers;
    for (size_t i = 0; i < n; ++i)
      if (given[i].is_none()) buffers.plan(jobs[i].nbytes);
    py::list results;
    for (size_t i = 0; i < n; ++i) {
      Job& j = jobs[i];
      if (!given[i].is_none()) {
        auto arr = py::reinterpret_borrow<py::array>(given[i]);
        j.out = static_cast<uint8_t*>(arr.mutable_data());
        results.append(arr);
        continue;
      }
      std::vector<py::ssize_t> shape(j.entry->shape.dims.begin(), j.entry->shape.dims.end());
      bindings::OutputBuffers::Place at = buffers.place(j.nbytes);
      j.out = at.data;
      results.append(py::array(dtypes[i], shape, std::vector<py::ssize_t>{}, j.out, at.owner));
    }
    // Largest first, so the last task to start is a small one.
    std::vector<size_t> order(n);
    std::iota(order.begin(), order.end(), size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return jobs[a].nbytes > jobs[b].nbytes; });
    std::vector<std::exception_ptr> errors;
    const unsigned nthreads = thread_count(threads);
    {
      py::gil_scoped_release release;
      io::parallel_for(n, nthreads, [&](size_t k) {
        const size_t i = order[k];
        reader_->read(names[i], jobs[i].out, jobs[i].to, raws[i], verify);
      }, errors);
    }
    for (size_t k = 0; k < n; ++k)
      if (errors[k]) std::rethrow_exception(errors[k]);
    return results;
  }

  // Starts reading whole fixed-size tensors into `outs` (their stored types or conversions
  // of them, no checksums verified) on `threads` threads of its own: see bindings/read_ahead.h.
  // `self` is this bundle's Python object, kept alive by the job.
  std::unique_ptr<bindings::ReadAhead> read_ahead(py::object self, const std::vector<std::string>& names,
                                                  const std::vector<py::object>& outs, unsigned threads) const {
    if (outs.size() != names.size()) throw std::invalid_argument("length mismatch");
    struct Item {
      std::string name;
      uint8_t* out = nullptr;
      convert::ElementType to;
      bool raw = false;  // the stored type itself (copied as stored)
    };
    std::vector<Item> items(names.size());
    std::vector<py::array> arrays;
    for (size_t i = 0; i < names.size(); ++i) {
      const tfckpt::BundleEntry& entry = reader_->entry(names[i]);
      const tfckpt::DTypeInfo* info = &readable_fixed_size(names[i], entry, "read_ahead");
      py::array out = bindings::whole_output(outs[i], tfckpt::BundleReader::num_elements(entry));
      arrays.push_back(out);
      Item& item = items[i];
      item.name = names[i];
      item.to = bindings::element_type_of(out.dtype());
      if (!convert::can_convert(info->element, item.to))
        throw Error("cannot convert " + std::string(info->name) + " to " + item.to.typestr());
      item.raw = item.to == info->element && item.to.is_native_order();
      item.out = static_cast<uint8_t*>(out.mutable_data());
    }
    const tfckpt::BundleReader* reader = reader_.get();  // alive while `self` is
    const size_t count = items.size();
    return std::make_unique<bindings::ReadAhead>(
        std::move(self), std::move(arrays),
        [reader, items = std::move(items)](size_t i) {
          reader->read(items[i].name, items[i].out, items[i].to, items[i].raw, /*verify=*/false);
        },
        count, threads);
  }

  // Checks the CRC-32C of the named tensors (all when `names` is None), in parallel.
  void verify(py::object names, py::object threads) const {
    std::vector<std::string> list = names.is_none() ? reader_->names() : names.cast<std::vector<std::string>>();
    std::vector<std::exception_ptr> errors;
    const unsigned nthreads = thread_count(threads);
    {
      py::gil_scoped_release release;
      io::parallel_for(list.size(), nthreads, [&](size_t i) { reader_->verify(list[i]); }, errors);
    }
    for (auto& e : errors)
      if (e) std::rethrow_exception(e);
  }

  py::object object_graph() const {
    if (!reader_->has_object_graph()) return py::none();
    tfckpt::ObjectGraph g;
    {
      py::gil_scoped_release release;
      g = reader_->object_graph();
    }
    py::list nodes;
    for (const auto& node : g.nodes) {
      py::list children, attributes, slots;
      for (const auto& c : node.children) children.append(py::make_tuple(c.node_id, decode_utf8(c.local_name)));
      for (const auto& a : node.attributes)
        attributes.append(py::make_tuple(decode_utf8(a.name), decode_utf8(a.full_name), decode_utf8(a.checkpoint_key),
                                         a.optional_restore));
      for (const auto& s : node.slot_variables)
        slots.append(py::make_tuple(s.original_variable_node_id, decode_utf8(s.slot_name), s.slot_variable_node_id));
      py::object saver = node.has_registered_saver
                             ? py::object(py::make_tuple(decode_utf8(node.saver_name), decode_utf8(node.saver_object_name)))
                             : py::object(py::none());
      py::object has_values = node.has_checkpoint_values < 0 ? py::object(py::none())
                                                              : py::object(py::bool_(node.has_checkpoint_values == 1));
      nodes.append(py::make_tuple(children, attributes, slots, saver, has_values));
    }
    return nodes;
  }

 private:
  // The dtype of a tensor `entry` (named `name`) to be read whole by `what`: fixed-size, with
  // sizes and bounds checked, so an output allocated for it is backed by data.
  const tfckpt::DTypeInfo& readable_fixed_size(const std::string& name, const tfckpt::BundleEntry& entry,
                                               const char* what) const {
    const tfckpt::DTypeInfo* info = tfckpt::dtype_info(entry.dtype);
    if (info == nullptr || info->size == 0)
      throw UnsupportedFeatureError(reader_->prefix() + ": tensor '" + name + "' has dtype " +
                                    tfckpt::dtype_enum_name(entry.dtype) + ", which " + what + " does not read");
    py::gil_scoped_release release;
    reader_->check_readable(name);
    return *info;
  }

  // Call with the GIL held (it reads a Python object).
  static unsigned thread_count(const py::object& threads) {
    if (threads.is_none()) return io::default_threads();
    int t = threads.cast<int>();
    return t < 1 ? 1u : static_cast<unsigned>(t);
  }

  static void check_output(const py::array& out, const std::vector<int64_t>& dims, const py::dtype& dtype) {
    if (!(out.flags() & py::array::c_style) || !out.writeable())
      throw std::invalid_argument("out must be a writeable C-contiguous array");
    if (!out.dtype().equal(dtype)) throw std::invalid_argument("out has the wrong dtype");
    if (static_cast<size_t>(out.ndim()) != dims.size()) throw std::invalid_argument("out has the wrong rank");
    for (size_t d = 0; d < dims.size(); ++d)
      if (out.shape(static_cast<py::ssize_t>(d)) != dims[d]) throw std::invalid_argument("out has the wrong shape");
  }

  std::unique_ptr<tfckpt::BundleReader> reader_;
};

}  // namespace

void register_tfckpt(py::module_& m) {
  py::class_<ShardBuffer>(m, "ShardBuffer", py::buffer_protocol(), "Read-only bytes of a mapped data shard")
      .def_buffer([](ShardBuffer& b) {
        return py::buffer_info(const_cast<uint8_t*>(b.map->data()), 1, py::format_descriptor<uint8_t>::format(), 1,
                               {static_cast<py::ssize_t>(b.map->size())}, {1}, /*readonly=*/true);
      })
      .def("__len__", [](const ShardBuffer& b) { return b.map->size(); })
      .def_property_readonly("path", [](const ShardBuffer& b) { return b.map->path(); })
      .def_property_readonly("is_mapped", [](const ShardBuffer& b) { return b.map->is_mapped(); });

  py::class_<TfBundle>(m, "TfBundle", "A TensorFlow tensor bundle (V2 checkpoint) parsed natively")
      .def(py::init<const std::string&>(), py::arg("prefix"))
      .def_property_readonly("prefix", [](const TfBundle& b) { return b.reader().prefix(); })
      .def_property_readonly("index_path", [](const TfBundle& b) { return b.reader().index_path(); })
      .def_property_readonly(
          "identity", [](const TfBundle& b) { return bindings::identity_tuple(b.reader().index_identity()); },
          "(device, inode, size, mtime_ns, ctime_ns) of the index file as opened")
      .def_property_readonly("num_shards", [](const TfBundle& b) { return b.reader().header().num_shards; })
      .def_property_readonly("big_endian", [](const TfBundle& b) { return b.reader().big_endian(); })
      .def_property_readonly("needs_byteswap", [](const TfBundle& b) { return b.reader().needs_byteswap(); })
      .def_property_readonly("version", [](const TfBundle& b) {
        const auto& v = b.reader().header().version;
        return py::make_tuple(v.producer, v.min_consumer, v.bad_consumers);
      })
      .def("data_filename", [](const TfBundle& b, int32_t shard) {
        return tfckpt::BundleReader::data_filename(b.reader().prefix(), shard, b.reader().header().num_shards);
      })
      .def("variables", &TfBundle::variables)
      .def("has", [](const TfBundle& b, const std::string& name) { return b.reader().find(name) != nullptr; })
      .def("info", &TfBundle::info)
      .def("shard", &TfBundle::shard)
      .def("direct", &TfBundle::direct, py::arg("name"), py::arg("verify") = false)
      .def("read_strings", &TfBundle::read_strings, py::arg("name"), py::arg("verify") = false)
      .def("read_many", &TfBundle::read_many, py::arg("names"), py::arg("dtypes"), py::arg("raws"),
           py::arg("threads") = py::none(), py::arg("verify") = false, py::arg("outs") = py::none())
      .def("read_ahead", [](py::object self, const std::vector<std::string>& names, const std::vector<py::object>& outs,
                            unsigned threads) { return self.cast<const TfBundle&>().read_ahead(self, names, outs, threads); },
           py::arg("names"), py::arg("outs"), py::arg("threads"),
           "Starts reading whole tensors into `outs` (their stored types or conversions of them) with `threads` "
           "threads of its own; ReadAhead.finish() waits for them")
      .def("verify", &TfBundle::verify, py::arg("names") = py::none(), py::arg("threads") = py::none())
      .def("object_graph", &TfBundle::object_graph);
}
