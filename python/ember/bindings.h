// bindings.h — registration functions for parts of the binding kept out of _core.cpp; each adds
// its classes and functions to the module and is called from _core.cpp's PYBIND11_MODULE body.
#pragma once

#include <pybind11/pybind11.h>

#include <memory>

#include "context.h"
#include "model/model.h"

// A loaded model and the context parameters it was opened with: what _core.Engine hands to
// _core.Scheduler so that the scheduler runs its own Context over the same weights.
struct ModelHandle {
    std::shared_ptr<const ember::Model> model;
    ember::ContextParams params;
};

// _core.Sampler: the token sampler (cpp/sampler.h), an internal hook for tests/test_sampler.py.
void bind_sampler(pybind11::module_& m);

// _core.Engine and _core.Generation: a loaded model with its context (cpp/context.h), under ember.Model.
void bind_engine(pybind11::module_& m);

// _core.Scheduler: continuous batching over a context of its own (cpp/scheduler.h), under ember.Engine.
void bind_scheduler(pybind11::module_& m);

// _core._ops_*: the forward pass's kernels (cpp/ops/), test hooks for tests/test_ops.py.
void bind_ops(pybind11::module_& m);
