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
    auto handle = handles.flat<ResourceHandle>();
    auto source = sources_tensor.flat<int64_t>();
    auto dtype = dtypes_tensor.flat<int32_t>();
    auto size = sizes_tensor.flat<int64_t>();

    std::vector<tensorflow::core::RefCountPtr<Var>> variables(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      OP_REQUIRES_OK(context, tensorflow::LookupResource(context, handle(i), &variables[static_cast<size_t>(i)]));
    }

    // Every mutex once (a variable may be listed twice), in address order.
    std::vector<tensorflow::mutex*> mutexes;
    mutexes.reserve(variables.size());
    for (auto& variable : variables) mutexes.push_back(variable->mu());
    std::sort(mutexes.begin(), mutexes.end());
    mutexes.erase(std::unique(mutexes.begin(), mutexes.end()), mutexes.end());
    for (auto* mu : mutexes) mu->lock();
    struct Unlock {
      std::vector<tensorflow::mutex*>& held;
      ~Unlock() {
        for (auto it = held.rbegin(); it != held.rend(); ++it) (*it)->unlock();
      }
    } unlock{mutexes};

    for (int64_t i = 0; i < n; ++i) {
      Var* variable = variables[static_cast<size_t>(i)].get();
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
      Var* variable = variables[static_cast<size_t>(i)].get();
      const Tensor* current = variable->tensor();
      if (variable->copy_on_read_mode.load() || !current->RefCountIsOne()) {
        OP_REQUIRES_OK(context, context->allocate_temp(current->dtype(), current->shape(), &fresh[static_cast<size_t>(i)]));
        replace[static_cast<size_t>(i)] = true;
      }
    }
    for (int64_t i = 0; i < n; ++i) {
      Var* variable = variables[static_cast<size_t>(i)].get();
      if (replace[static_cast<size_t>(i)]) *variable->tensor() = fresh[static_cast<size_t>(i)];
      if (size(i) > 0) {
        void* destination = const_cast<char*>(variable->tensor()->tensor_data().data());
        std::memcpy(destination, reinterpret_cast<const void*>(static_cast<intptr_t>(source(i))),
                    static_cast<size_t>(size(i)));
      }
    }
  }
};

REGISTER_KERNEL_BUILDER(Name("WeightioPackHandles").Device(tensorflow::DEVICE_CPU), PackHandles);
REGISTER_KERNEL_BUILDER(Name("WeightioAssignVariables").Device(tensorflow::DEVICE_CPU), AssignVariables);

}  // namespace weightio_tf
