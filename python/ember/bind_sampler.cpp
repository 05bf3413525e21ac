// bind_sampler.cpp — _core.Sampler, the token sampler (cpp/sampler.h) exposed for its tests: the
// constructor takes SamplingParams' fields as keywords and validates them; sample_many draws n
// tokens from one row of logits without the GIL, so statistical tests need no Python loop.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "bindings.h"
#include "common.h"
#include "sampler.h"

namespace py = pybind11;
using namespace ember;

namespace {

using FloatRow = py::array_t<float, py::array::c_style | py::array::forcecast>;

// The Sampler plus a lock: sample_many runs without the GIL, so two Python threads could
// otherwise reach the same (unsynchronized) Sampler at once.
struct PySampler {
    PySampler(const SamplingParams& p, int32_t n) : sampler(p, n), n_vocab(n) {}
    Sampler sampler;
    int32_t n_vocab;
    std::mutex mu;
};

// logits as a contiguous float32 row of n_vocab, converted from any real numeric dtype; the
// returned array owns the data for as long as the caller holds it.
FloatRow logits_row(const py::handle& obj, int32_t n_vocab) {
    py::array arr = py::array::ensure(obj);
    if (!arr) fail<ArgumentError>("logits must be a numpy array (or convertible to one)");
    const char kind = arr.dtype().kind();
    if (kind != 'f' && kind != 'i' && kind != 'u')
        fail<ArgumentError>("logits must have a real numeric dtype (float32 preferred), got ",
                            std::string(py::str(arr.dtype())));
    if (arr.ndim() != 1) fail<ArgumentError>("logits must be 1-D (n_vocab,), got ", arr.ndim(), " dimensions");
    if (arr.shape(0) != n_vocab)
        fail<ArgumentError>("logits has length ", arr.shape(0), ", expected n_vocab = ", n_vocab);
    FloatRow row = FloatRow::ensure(arr);
    if (!row) throw py::error_already_set();
    return row;
}

}  // namespace

void bind_sampler(py::module_& m) {
    py::class_<PySampler>(m, "Sampler")
        .def(py::init([](int32_t n_vocab, float temperature, int32_t top_k, float top_p, float min_p, float repeat_penalty,
                         int32_t repeat_last_n, float presence_penalty, float frequency_penalty, uint64_t seed) {
                 // field order of SamplingParams
                 const SamplingParams p{temperature,   top_k,         top_p,
                                        min_p,         repeat_penalty, repeat_last_n,
                                        presence_penalty, frequency_penalty, seed};
                 return std::make_unique<PySampler>(p, n_vocab);
             }),
             py::arg("n_vocab"), py::arg("temperature") = 0.8f, py::arg("top_k") = 40, py::arg("top_p") = 0.95f,
             py::arg("min_p") = 0.05f, py::arg("repeat_penalty") = 1.0f, py::arg("repeat_last_n") = 64,
             py::arg("presence_penalty") = 0.0f, py::arg("frequency_penalty") = 0.0f, py::arg("seed") = 0)
        .def("accept", [](PySampler& s, int32_t id) {
                 std::lock_guard<std::mutex> lock(s.mu);
                 s.sampler.accept(id);
             }, py::arg("id"))
        .def("sample", [](PySampler& s, const py::handle& logits) {
                 FloatRow row = logits_row(logits, s.n_vocab);
                 std::lock_guard<std::mutex> lock(s.mu);
                 return s.sampler.sample(row.data());
             }, py::arg("logits"))
        .def("sample_many", [](PySampler& s, const py::handle& logits, int64_t n) {
                 if (n < 0) fail<ArgumentError>("sample_many: n must be >= 0, got ", n);
                 FloatRow row = logits_row(logits, s.n_vocab);
                 py::array_t<int32_t> out(static_cast<py::ssize_t>(n));
                 int32_t* dst = out.mutable_data();
                 const float* src = row.data();
                 {
                     py::gil_scoped_release nogil;
                     std::lock_guard<std::mutex> lock(s.mu);
                     for (int64_t i = 0; i < n; ++i) dst[i] = s.sampler.sample(src);
                 }
                 return out;
             }, py::arg("logits"), py::arg("n"))
        .def("reset", [](PySampler& s, uint64_t seed) {
                 std::lock_guard<std::mutex> lock(s.mu);
                 s.sampler.reset(seed);
             }, py::arg("seed"))
        .def_property_readonly("n_vocab", [](const PySampler& s) { return s.n_vocab; });
}
