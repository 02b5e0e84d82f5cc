// weightio's TensorFlow ops: many variables set in one op call, instead of one
// AssignVariableOp (~8-12 us of eager dispatch) per variable.
//
// Not built with the package: TensorFlow's C++ headers and ABI belong to the installed
// TensorFlow, so `weightio build-tf-ops` (weightio/keras/tf_ops.py) compiles this file against
// them, into a cache, and weightio loads it with tf.load_op_library. Private to weightio: the
// assign op copies from raw addresses that the caller guarantees (arrays it holds alive).
//
// WeightioPackHandles(parts: N * resource, count: int64) -> resource [count]
//   The resource handles of `parts` (scalars or vectors), flattened and concatenated, the
//   first `count` of them. Built once per set of variables: eager dispatch costs ~1 us per
//   input, so the handles are passed to the assign op as one tensor.
//
// WeightioAssignVariables(handles: resource [n], sources: int64 [n], dtypes: int32 [n],
//                         sizes: int64 [n])
//   Sets variable i to the `sizes[i]` bytes at address `sources[i]`. Every variable is
//   looked up and checked first (CPU, initialized, of dtype `dtypes[i]`, a type copied with
//   memcpy, exactly `sizes[i]` bytes); any failure raises before anything is written. The
//   variables' mutexes are all held (taken in address order, as TensorFlow's own multi-variable
//   ops take them) while their buffers are replaced where needed and written, so no other op
//   sees a half-assigned variable. As AssignVariableOp does, a variable whose buffer is shared
//   (a tensor read from it is still alive) or in copy-on-read mode gets a new buffer; otherwise
//   its buffer is written in place.
//
// WeightioEmpty(dims: int64, ranks: int32 [n]) -> (addresses: int64 [n], values: T)
//   n new uninitialized tensors, of the types T and the shapes given by `ranks` (each shape's
//   rank) and `dims` (their dimensions, one shape after another), and where each one's memory
//   starts (0 when empty): weightio reads large values straight into them, then the variables
//   take them over (WeightioAdoptTensors). One call instead of an Empty op per value.
//
// WeightioAdoptTensors(handles: resource [n], values: T) with T a list of n types
//   Variable i takes over tensor `values[i]` (its buffer, no copy: weightio's fresh arrays,
//   handed over through DLPack), as AssignVariableOp does with an input nothing else holds.
//   Checked first for every variable: CPU, initialized, the value's dtype and shape; then, all
//   locks held, set (a variable in copy-on-read mode gets a copy, as AssignVariableOp gives it).

#include <algorithm>
#include <cstring>
#include <vector>

#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/resource_mgr.h"
#include "tensorflow/core/framework/resource_var.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace weightio_tf {

using tensorflow::DataType;
using tensorflow::OpKernel;
using tensorflow::OpKernelConstruction;
using tensorflow::OpKernelContext;
using tensorflow::ResourceHandle;
using tensorflow::Tensor;
using tensorflow::TensorShape;
using tensorflow::Var;

REGISTER_OP("WeightioPackHandles")
    .Input("parts: N * resource")
    .Input("count: int64")
    .Output("packed: resource")
    .Attr("N: int >= 1")
    .SetIsStateful()
    .SetShapeFn(tensorflow::shape_inference::UnknownShape);

REGISTER_OP("WeightioAssignVariables")
    .Input("handles: resource")
    .Input("sources: int64")
    .Input("dtypes: int32")
    .Input("sizes: int64")
    .SetIsStateful()
    .SetShapeFn(tensorflow::shape_inference::NoOutputs);

REGISTER_OP("WeightioEmpty")
    .Input("dims: int64")
    .Input("ranks: int32")
    .Output("addresses: int64")
    .Output("values: T")
    .Attr("T: list(type)")
    .SetIsStateful()
    .SetShapeFn(tensorflow::shape_inference::UnknownShape);

REGISTER_OP("WeightioAdoptTensors")
    .Input("handles: resource")
    .Input("values: T")
    .Attr("T: list(type)")
    .SetIsStateful()
    .SetShapeFn(tensorflow::shape_inference::NoOutputs);

// The variables of `handles`, looked up, their mutexes locked (each once, in address order)
// for the holder's lifetime.
class LockedVariables {
 public:
  LockedVariables(OpKernelContext* context, const Tensor& handles) {
    auto handle = handles.flat<ResourceHandle>();
    variables_.resize(static_cast<size_t>(handle.size()));
    for (int64_t i = 0; i < handle.size(); ++i) {
      status_ = tensorflow::LookupResource(context, handle(i), &variables_[static_cast<size_t>(i)]);
      if (!status_.ok()) return;
    }
    for (auto& variable : variables_) mutexes_.push_back(variable->mu());
    std::sort(mutexes_.begin(), mutexes_.end());
    mutexes_.erase(std::unique(mutexes_.begin(), mutexes_.end()), mutexes_.end());
    for (auto* mu : mutexes_) mu->lock();
  }
  ~LockedVariables() {
    for (auto it = mutexes_.rbegin(); it != mutexes_.rend(); ++it) (*it)->unlock();
  }
  LockedVariables(const LockedVariables&) = delete;
  LockedVariables& operator=(const LockedVariables&) = delete;

  const absl::Status& status() const { return status_; }
  Var* operator[](int64_t i) const { return variables_[static_cast<size_t>(i)].get(); }

 private:
  std::vector<tensorflow::core::RefCountPtr<Var>> variables_;
  std::vector<tensorflow::mutex*> mutexes_;
  absl::Status status_;
};

class PackHandles : public OpKernel {
 public:
  explicit PackHandles(OpKernelConstruction* context) : OpKernel(context) {}

  void Compute(OpKernelContext* context) override {
    const int parts = context->num_inputs() - 1;
    const Tensor& count_tensor = context->input(parts);
    OP_REQUIRES(context, count_tensor.NumElements() == 1,
                tensorflow::errors::InvalidArgument("weightio: count must be a scalar"));
    const int64_t count = count_tensor.flat<int64_t>()(0);
    int64_t available = 0;
    for (int i = 0; i < parts; ++i) available += context->input(i).NumElements();
    OP_REQUIRES(context, count >= 0 && count <= available,
                tensorflow::errors::InvalidArgument("weightio: count ", count, " of ", available, " handles"));
    Tensor* packed = nullptr;
    OP_REQUIRES_OK(context, context->allocate_output(0, TensorShape({count}), &packed));
    auto out = packed->flat<ResourceHandle>();
    int64_t next = 0;
    for (int i = 0; i < parts && next < count; ++i) {
      auto in = context->input(i).flat<ResourceHandle>();
      for (int64_t k = 0; k < in.size() && next < count; ++k) out(next++) = in(k);
    }
  }
};

class AssignVariables : public OpKernel {
 public:
  explicit AssignVariables(OpKernelConstruction* context) : OpKernel(context) {}

  void Compute(OpKernelContext* context) override {
    const Tensor& handles = context->input(0);
    const int64_t n = handles.NumElements();
    const Tensor& sources_tensor = context->input(1);
    const Tensor& dtypes_tensor = context->input(2);
    const Tensor& sizes_tensor = context->input(3);
    OP_REQUIRES(context,
                sources_tensor.NumElements() == n && dtypes_tensor.NumElements() == n && sizes_tensor.NumElements() == n,
                tensorflow::errors::InvalidArgument("weightio: one source, dtype and size per variable"));
    auto source = sources_tensor.flat<int64_t>();
    auto dtype = dtypes_tensor.flat<int32_t>();
    auto size = sizes_tensor.flat<int64_t>();

    LockedVariables variables(context, handles);
    OP_REQUIRES_OK(context, variables.status());

    for (int64_t i = 0; i < n; ++i) {
      Var* variable = variables[i];
      const Tensor* current = variable->tensor();
      OP_REQUIRES(context, variable->is_initialized,
                  tensorflow::errors::FailedPrecondition("weightio: variable ", i, " is not initialized"));
      OP_REQUIRES(context,
                  current->dtype() == static_cast<DataType>(dtype(i)) && tensorflow::DataTypeCanUseMemcpy(current->dtype()),
                  tensorflow::errors::InvalidArgument("weightio: variable ", i, " is of another dtype"));
      OP_REQUIRES(context, static_cast<int64_t>(current->TotalBytes()) == size(i),
                  tensorflow::errors::InvalidArgument("weightio: variable ", i, " holds ", current->TotalBytes(),
                                                      " bytes, not ", size(i)));
      OP_REQUIRES(context, size(i) == 0 || source(i) != 0,
                  tensorflow::errors::InvalidArgument("weightio: no source for variable ", i));
    }

    // New buffers first (the only step that can fail), then the copies.
    // (A default Tensor counts as initialized: `replace` says which ones were allocated.)
    std::vector<Tensor> fresh(static_cast<size_t>(n));
    std::vector<bool> replace(static_cast<size_t>(n), false);
    for (int64_t i = 0; i < n; ++i) {
      Var* variable = variables[i];
      const Tensor* current = variable->tensor();
      if (variable->copy_on_read_mode.load() || !current->RefCountIsOne()) {
        OP_REQUIRES_OK(context, context->allocate_temp(current->dtype(), current->shape(), &fresh[static_cast<size_t>(i)]));
        replace[static_cast<size_t>(i)] = true;
      }
    }
    for (int64_t i = 0; i < n; ++i) {
      Var* variable = variables[i];
      if (replace[static_cast<size_t>(i)]) *variable->tensor() = fresh[static_cast<size_t>(i)];
      if (size(i) > 0) {
        void* destination = const_cast<char*>(variable->tensor()->tensor_data().data());
        std::memcpy(destination, reinterpret_cast<const void*>(static_cast<intptr_t>(source(i))),
                    static_cast<size_t>(size(i)));
      }
    }
  }
};

class Empty : public OpKernel {
 public:
  explicit Empty(OpKernelConstruction* context) : OpKernel(context) {
    OP_REQUIRES_OK(context, context->GetAttr("T", &types_));
  }

  void Compute(OpKernelContext* context) override {
    const int64_t n = static_cast<int64_t>(types_.size());
    const Tensor& dims_tensor = context->input(0);
    const Tensor& ranks_tensor = context->input(1);
    OP_REQUIRES(context, ranks_tensor.NumElements() == n,
                tensorflow::errors::InvalidArgument("weightio: one rank per tensor"));
    auto dims = dims_tensor.flat<int64_t>();
    auto ranks = ranks_tensor.flat<int32_t>();
    Tensor* addresses = nullptr;
    OP_REQUIRES_OK(context, context->allocate_output(0, TensorShape({n}), &addresses));
    auto address = addresses->flat<int64_t>();
    int64_t next = 0;
    for (int64_t i = 0; i < n; ++i) {
      OP_REQUIRES(context, ranks(i) >= 0 && next + ranks(i) <= dims.size(),
                  tensorflow::errors::InvalidArgument("weightio: ranks and dims disagree"));
      TensorShape shape;
      for (int32_t d = 0; d < ranks(i); ++d) OP_REQUIRES_OK(context, shape.AddDimWithStatus(dims(next++)));
      Tensor* value = nullptr;
      OP_REQUIRES_OK(context, context->allocate_output(static_cast<int>(i + 1), shape, &value));
      address(i) = value->NumElements() == 0 ? 0 : static_cast<int64_t>(reinterpret_cast<intptr_t>(value->tensor_data().data()));
    }
    OP_REQUIRES(context, next == dims.size(), tensorflow::errors::InvalidArgument("weightio: ranks and dims disagree"));
  }

 private:
  tensorflow::DataTypeVector types_;
};

class AdoptTensors : public OpKernel {
 public:
  explicit AdoptTensors(OpKernelConstruction* context) : OpKernel(context) {}

  void Compute(OpKernelContext* context) override {
    const Tensor& handles = context->input(0);
    const int64_t n = handles.NumElements();
    OP_REQUIRES(context, context->num_inputs() == n + 1,
                tensorflow::errors::InvalidArgument("weightio: one value per variable"));
    LockedVariables variables(context, handles);
    OP_REQUIRES_OK(context, variables.status());
    for (int64_t i = 0; i < n; ++i) {
      Var* variable = variables[i];
      const Tensor& value = context->input(static_cast<int>(i + 1));
      const Tensor* current = variable->tensor();
      OP_REQUIRES(context, variable->is_initialized,
                  tensorflow::errors::FailedPrecondition("weightio: variable ", i, " is not initialized"));
      OP_REQUIRES(context, current->dtype() == value.dtype() && current->shape() == value.shape(),
                  tensorflow::errors::InvalidArgument("weightio: variable ", i, " is of another dtype or shape"));
    }
    std::vector<Tensor> copies(static_cast<size_t>(n));
    std::vector<bool> copied(static_cast<size_t>(n), false);
    for (int64_t i = 0; i < n; ++i) {
      if (variables[i]->copy_on_read_mode.load()) {
        const Tensor& value = context->input(static_cast<int>(i + 1));
        OP_REQUIRES_OK(context, context->allocate_temp(value.dtype(), value.shape(), &copies[static_cast<size_t>(i)]));
        copied[static_cast<size_t>(i)] = true;
      }
    }
    for (int64_t i = 0; i < n; ++i) {
      const Tensor& value = context->input(static_cast<int>(i + 1));
      if (copied[static_cast<size_t>(i)]) {
        Tensor& copy = copies[static_cast<size_t>(i)];
        if (value.TotalBytes() > 0) {
          std::memcpy(const_cast<char*>(copy.tensor_data().data()), value.tensor_data().data(), value.TotalBytes());
        }
        *variables[i]->tensor() = copy;
      } else {
        *variables[i]->tensor() = value;
      }
    }
  }
};

REGISTER_KERNEL_BUILDER(Name("WeightioPackHandles").Device(tensorflow::DEVICE_CPU), PackHandles);
REGISTER_KERNEL_BUILDER(Name("WeightioAssignVariables").Device(tensorflow::DEVICE_CPU), AssignVariables);
REGISTER_KERNEL_BUILDER(Name("WeightioEmpty").Device(tensorflow::DEVICE_CPU), Empty);
REGISTER_KERNEL_BUILDER(Name("WeightioAdoptTensors").Device(tensorflow::DEVICE_CPU), AdoptTensors);

}  // namespace weightio_tf
