// numpy dtype <-> convert::ElementType, shared by the binding units.
#pragma once
#include <pybind11/numpy.h>

#include "convert/element_type.h"

namespace weightio::bindings {

// bfloat16 (ml_dtypes) is recognised by name; everything else by numpy's typestr.
convert::ElementType element_type_of(const pybind11::dtype& dt);
// The numpy dtype of an element type; bfloat16 needs ml_dtypes.
pybind11::dtype dtype_of(const convert::ElementType& t);
// True when ml_dtypes (numpy's bfloat16) can be imported.
bool have_bfloat16();

}  // namespace weightio::bindings
