// bindings.h — registration functions for parts of the binding kept out of _core.cpp; each adds
// its classes and functions to the module and is called from _core.cpp's PYBIND11_MODULE body.
#pragma once

#include <pybind11/pybind11.h>

// _core.Sampler: the token sampler (cpp/sampler.h), an internal hook for tests/test_sampler.py.
void bind_sampler(pybind11::module_& m);

// _core.Engine and _core.Generation: a loaded model with its context (cpp/context.h), under ember.Model.
void bind_engine(pybind11::module_& m);

// _core._ops_*: the forward pass's kernels (cpp/ops/), test hooks for tests/test_ops.py.
void bind_ops(pybind11::module_& m);
