// bind_ops.cpp — test hooks: the forward pass's kernels (cpp/ops/) callable from Python, so each
// is checked on its own against float64 numpy (tests/test_ops.py). Not a public API: names
// start with "_ops_".
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <chrono>
#include <atomic>
#include <cstring>
#include <numeric>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "bindings.h"
#include "common.h"
#include "ops/attention.h"
#include "ops/matmul.h"
#include "ops/norm.h"
#include "ops/rope.h"
#include "quants/packed.h"
#include "quants/packed_float.h"
#include "quants/dispatch.h"
#include "quants/fp16.h"
#include "threadpool.h"

namespace py = pybind11;
using namespace ember;

namespace {

using F32 = py::array_t<float, py::array::c_style | py::array::forcecast>;

const KernelTable& table(const std::optional<std::string>& isa) { return isa ? kernels(isa_from_name(*isa)) : kernels(); }

void need(bool ok, const char* what) {
    if (!ok) fail<ArgumentError>(what);
}

// layout: "file" (the ggml rows as stored), "packed" (repacked for the ISA's packed tiles) or
// "packed_ref" (repacked, through the scalar reference tiles).
py::array_t<float> matmul_hook(py::array_t<uint8_t, py::array::c_style> w, const std::string& type_name, int64_t cols, F32 x,
                               const std::optional<std::string>& isa, int n_threads, const std::string& layout) {
    const TypeTraits* tr = type_by_name(type_name);
    need(tr && can_dequantize(tr->type), "unknown or unsupported type");
    need(w.ndim() == 2 && x.ndim() == 2 && x.shape(1) == cols && cols % tr->block_size == 0, "bad shapes");
    need(uint64_t(w.shape(1)) == row_size(tr->type, cols), "weight rows have the wrong byte length");
    need(layout == "file" || layout == "packed" || layout == "packed_ref", "layout must be file, packed or packed_ref");
    TensorView v;
    v.type = tr->type;
    v.ne0 = cols;
    v.n_rows = w.shape(0);
    v.row_bytes = row_size(tr->type, cols);
    v.data = w.data();
    KernelTable k = table(isa);
    std::vector<uint8_t> packed;
    if (layout == "packed" && k.float_tile[uint32_t(v.type)]) {
        packed.resize(size_t(packed_float_size(v.type, v.n_rows, cols)));
        pack_float_rows(v.type, v.data, v.row_bytes, v.n_rows, cols, packed.data());
        v.packed = packed.data();
    } else if (layout != "file") {
        need(packed_size(v.type, v.n_rows, cols) > 0, "this type has no packed layout");
        packed.resize(size_t(packed_size(v.type, v.n_rows, cols)));
        pack_rows(v.type, v.data, v.row_bytes, v.n_rows, cols, packed.data());
        v.packed = packed.data();
        if (layout == "packed_ref") {
            static const PackedTileFn refs[] = {ref::packed_tile_q4_0, ref::packed_tile_q4_1, ref::packed_tile_q5_0,
                                                ref::packed_tile_q5_1, ref::packed_tile_q8_0, ref::packed_tile_q4_K,
                                                ref::packed_tile_q6_K};
            static const GGMLType types[] = {GGMLType::Q4_0, GGMLType::Q4_1, GGMLType::Q5_0, GGMLType::Q5_1,
                                             GGMLType::Q8_0, GGMLType::Q4_K, GGMLType::Q6_K};
            for (size_t i = 0; i < 7; ++i) k.packed_tile[uint32_t(types[i])] = refs[i];
        }
        need(k.packed_tile[uint32_t(v.type)] != nullptr, "this instruction set has no packed kernel for the type");
    }
    const int64_t T = x.shape(0);
    py::array_t<float> y({py::ssize_t(T), py::ssize_t(v.n_rows)});
    float* out = y.mutable_data();
    const float* in = x.data();
    {
        py::gil_scoped_release nogil;
        ThreadPool pool(n_threads);
        MatmulScratch scratch(n_threads, cols, T);
        matmul(v, in, cols, T, out, v.n_rows, pool, scratch, k);
    }
    return y;
}

// Best seconds of `repeats` matmuls of n_tokens random activations against w, packed as the
// engine packs it (for bench/: GB/s of the matrix-vector product, GFLOP/s of the batched one).
double matmul_time_hook(py::array_t<uint8_t, py::array::c_style> w, const std::string& type_name, int64_t cols, int64_t n_tokens,
                        int n_threads, int repeats) {
    const TypeTraits* tr = type_by_name(type_name);
    need(tr && can_dequantize(tr->type) && w.ndim() == 2 && uint64_t(w.shape(1)) == row_size(tr->type, cols), "bad arguments");
    need(n_tokens > 0 && n_threads > 0 && repeats > 0, "bad counts");
    TensorView v;
    v.type = tr->type;
    v.ne0 = cols;
    v.n_rows = w.shape(0);
    v.row_bytes = row_size(tr->type, cols);
    v.data = w.data();
    const KernelTable& k = kernels();
    std::vector<uint8_t> packed;
    if (k.packed_tile[uint32_t(v.type)]) {
        packed.resize(size_t(packed_size(v.type, v.n_rows, cols)));
        pack_rows(v.type, v.data, v.row_bytes, v.n_rows, cols, packed.data());
        v.packed = packed.data();
    } else if (k.float_tile[uint32_t(v.type)]) {
        packed.resize(size_t(packed_float_size(v.type, v.n_rows, cols)));
        pack_float_rows(v.type, v.data, v.row_bytes, v.n_rows, cols, packed.data());
        v.packed = packed.data();
    }
    std::vector<float> x(size_t(n_tokens * cols)), y(size_t(n_tokens * v.n_rows));
    std::mt19937 rng(1);
    std::normal_distribution<float> nd;
    for (float& f : x) f = nd(rng);
    py::gil_scoped_release nogil;
    ThreadPool pool(n_threads);
    MatmulScratch scratch(n_threads, cols, n_tokens);
    double best = 1e30;
    for (int r = 0; r <= repeats; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        matmul(v, x.data(), cols, n_tokens, y.data(), v.n_rows, pool, scratch, k);
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (r > 0) best = std::min(best, s);  // the first run warms caches
    }
    return best;
}

py::array_t<float> unpack_row_hook(py::array_t<uint8_t, py::array::c_style> w, const std::string& type_name, int64_t cols,
                                   int64_t row) {
    const TypeTraits* tr = type_by_name(type_name);
    need(tr && packed_size(tr->type, 1, cols) > 0 && w.ndim() == 2 && 0 <= row && row < w.shape(0), "bad arguments");
    std::vector<uint8_t> packed(size_t(packed_size(tr->type, w.shape(0), cols)));
    pack_rows(tr->type, w.data(), uint64_t(w.shape(1)), w.shape(0), cols, packed.data());
    py::array_t<float> y(cols);
    unpack_row(tr->type, packed.data(), cols, row, y.mutable_data());
    return y;
}

py::array_t<float> rms_norm_hook(F32 x, std::optional<F32> w, float eps) {
    need(x.ndim() == 2, "x must be 2-D");
    const int64_t n = x.shape(1);
    if (w) need(w->ndim() == 1 && w->shape(0) == n, "w must match the rows of x");
    py::array_t<float> y({x.shape(0), x.shape(1)});
    for (int64_t t = 0; t < x.shape(0); ++t) rms_norm(x.data() + t * n, w ? w->data() : nullptr, n, eps, y.mutable_data() + t * n);
    return y;
}

py::array_t<float> softmax_hook(F32 x) {
    need(x.ndim() == 1, "x must be 1-D");
    py::array_t<float> y(x.shape(0));
    std::memcpy(y.mutable_data(), x.data(), sizeof(float) * size_t(x.shape(0)));
    softmax(y.mutable_data(), x.shape(0));
    return y;
}

py::array_t<float> rope_hook(F32 x, int32_t pos, int32_t n_dims, const std::string& style, float freq_base, float freq_scale,
                             const std::string& scaling, float ext_factor, float attn_factor, float beta_fast, float beta_slow,
                             int32_t n_ctx_orig, std::optional<F32> freq_factors) {
    need(x.ndim() == 2, "x must be (n_heads, head_dim)");
    const int32_t n_heads = int32_t(x.shape(0)), head_dim = int32_t(x.shape(1));
    need(n_dims > 0 && n_dims % 2 == 0 && n_dims <= head_dim, "bad n_dims");
    RopeParams p;
    p.n_dims = n_dims;
    p.freq_base = freq_base;
    p.freq_scale = freq_scale;
    p.scaling = scaling == "linear" ? RopeScaling::Linear : scaling == "yarn" ? RopeScaling::YaRN : RopeScaling::None;
    p.ext_factor = ext_factor;
    p.attn_factor = attn_factor;
    p.beta_fast = beta_fast;
    p.beta_slow = beta_slow;
    p.n_ctx_orig = n_ctx_orig;
    if (freq_factors) need(freq_factors->ndim() == 1 && freq_factors->shape(0) == n_dims / 2, "freq_factors must have n_dims/2 values");
    std::vector<float> cs(static_cast<size_t>(n_dims));
    rope_cos_sin(p, freq_factors ? freq_factors->data() : nullptr, pos, cs.data());
    py::array_t<float> y({x.shape(0), x.shape(1)});
    std::memcpy(y.mutable_data(), x.data(), sizeof(float) * size_t(x.size()));
    rope_apply(y.mutable_data(), n_heads, head_dim, n_dims, style == "neox" ? RopeStyle::NeoX : RopeStyle::Normal, cs.data());
    return y;
}

// Keys and values (n rows of head_dim) scattered over blocks in a shuffled order, so the tests
// exercise the block table rather than contiguous rows; keys dimension-major in each block, as
// the KV cache keeps them, or (key_rows) row by row like the values.
struct PagedCopy {
    std::vector<int32_t> order;
    std::vector<uint8_t> k, v;
    PagedRows kr, vr;
    PagedCopy(const F32& kin, const F32& vin, int32_t block_size, bool f16, uint32_t seed, bool key_rows) {
        const int32_t n = int32_t(kin.shape(0)), d = int32_t(kin.shape(1));
        const int32_t n_blocks = (n + block_size - 1) / block_size;
        order.resize(static_cast<size_t>(n_blocks));
        std::iota(order.begin(), order.end(), 0);
        std::shuffle(order.begin(), order.end(), std::mt19937(seed));
        const uint64_t elem = f16 ? 2 : 4, row = uint64_t(d) * elem, block = row * uint64_t(block_size);
        k.resize(block * uint64_t(n_blocks));
        v.resize(k.size());
        // keys: element i of a block's rows together (or rows, as the values)
        const uint64_t dim = key_rows ? elem : elem * uint64_t(block_size), kstep = key_rows ? row : elem;
        for (int32_t j = 0; j < n; ++j) {
            const uint64_t first = uint64_t(order[size_t(j / block_size)]) * block;
            const uint64_t at = first + uint64_t(j % block_size) * row, kat = first + uint64_t(j % block_size) * kstep;
            for (int32_t i = 0; i < d; ++i) {
                const float kv = kin.data()[int64_t(j) * d + i], vv = vin.data()[int64_t(j) * d + i];
                if (f16) {
                    const uint16_t hk = fp32_to_fp16(kv), hv = fp32_to_fp16(vv);
                    std::memcpy(k.data() + kat + dim * uint64_t(i), &hk, 2);
                    std::memcpy(v.data() + at + 2 * i, &hv, 2);
                } else {
                    std::memcpy(k.data() + kat + dim * uint64_t(i), &kv, 4);
                    std::memcpy(v.data() + at + 4 * i, &vv, 4);
                }
            }
        }
        kr = PagedRows{k.data(), block, kstep, block_size, order.data(), f16, dim};
        vr = PagedRows{v.data(), block, row, block_size, order.data(), f16};
    }
};

py::array_t<float> attention_hook(F32 q, F32 k, F32 v, int32_t j0, int32_t j1, float scale, int32_t block_size, bool f16,
                                  uint32_t shuffle_seed, const std::optional<std::string>& isa, bool key_rows) {
    need(q.ndim() == 1 && k.ndim() == 2 && v.ndim() == 2 && k.shape(1) == q.shape(0) && v.shape(1) == q.shape(0) &&
             k.shape(0) == v.shape(0), "shapes: q (d,), k and v (n, d)");
    const int32_t n = int32_t(k.shape(0)), d = int32_t(q.shape(0));
    need(0 <= j0 && j0 <= j1 && j1 < n && block_size > 0, "bad range");
    const PagedCopy kv(k, v, block_size, f16, shuffle_seed, key_rows);
    std::vector<float> scores(static_cast<size_t>(n));
    py::array_t<float> out(d);
    attend(q.data(), d, kv.kr, kv.vr, j0, j1, scale, scores.data(), out.mutable_data(), table(isa));
    return out;
}

// Many queries over one KV head through the batched kernel: query i sees [first[i], last[i]].
py::array_t<float> attention_batch_hook(F32 q, F32 k, F32 v, const std::vector<int32_t>& first, const std::vector<int32_t>& last,
                                        float scale, int32_t block_size, bool f16, uint32_t shuffle_seed,
                                        const std::optional<std::string>& isa, bool key_rows) {
    need(q.ndim() == 2 && k.ndim() == 2 && v.ndim() == 2 && k.shape(1) == q.shape(1) && v.shape(1) == q.shape(1) &&
             k.shape(0) == v.shape(0), "shapes: q (m, d), k and v (n, d)");
    const int32_t m = int32_t(q.shape(0)), n = int32_t(k.shape(0)), d = int32_t(q.shape(1));
    need(first.size() == size_t(m) && last.size() == size_t(m) && block_size > 0, "one range per query");
    for (int32_t i = 0; i < m; ++i) need(0 <= first[i] && first[i] <= last[i] && last[i] < n, "bad range");
    const PagedCopy kv(k, v, block_size, f16, shuffle_seed, key_rows);
    py::array_t<float> out({py::ssize_t(m), py::ssize_t(d)});
    std::vector<const float*> qp(static_cast<size_t>(m));
    std::vector<float*> op(static_cast<size_t>(m));
    for (int32_t i = 0; i < m; ++i) {
        qp[size_t(i)] = q.data() + int64_t(i) * d;
        op[size_t(i)] = out.mutable_data() + int64_t(i) * d;
    }
    std::vector<float> scratch(attend_batch_scratch(m, d, n));
    const KernelTable& kt = table(isa);
    kt.attend_batch(AttnQueries{qp.data(), op.data(), first.data(), last.data(), m}, d, kv.kr, kv.vr, scale, scratch.data(), kt);
    return out;
}

// The activations as the integer matmul quantizes them: bytes of n / block_size blocks.
py::array_t<uint8_t> quantize_act_hook(F32 x, const std::string& format, const std::optional<std::string>& isa) {
    need(x.ndim() == 1, "x must be 1-D");
    const ActFormat f = format == "a8" ? ActFormat::A8 : format == "q8k" ? ActFormat::Q8K : ActFormat::None;
    need(f != ActFormat::None, "format must be 'a8' or 'q8k'");
    const int64_t block = f == ActFormat::A8 ? 32 : 256;
    need(x.shape(0) % block == 0, "length must be a multiple of the block size");
    py::array_t<uint8_t> out(py::ssize_t(act_row_size(f, x.shape(0))));
    table(isa).quantize_act[size_t(f)](x.data(), out.mutable_data(), x.shape(0));
    return out;
}


// Alternating jobs of different shapes (few pieces, guided pieces, many tasks, single items) on one pool;
// every index of every job must run exactly once. Returns the number of jobs run.
int64_t threadpool_stress(int n_threads, int64_t jobs) {
    py::gil_scoped_release nogil;
    ThreadPool pool(n_threads);
    std::vector<std::atomic<int32_t>> hits(4096);
    for (int64_t j = 0; j < jobs; ++j) {
        const int64_t n = 1 + (j * 7919) % 300;
        for (int64_t i = 0; i < n; ++i) hits[size_t(i)].store(0, std::memory_order_relaxed);
        if (j % 3 == 0) {
            pool.parallel_tasks(n, [&](int64_t i, int) { hits[size_t(i)].fetch_add(1, std::memory_order_relaxed); });
        } else if (j % 3 == 1) {
            pool.parallel_guided(n, 1 + j % 5, [&](int64_t b, int64_t e, int) {
                for (int64_t i = b; i < e; ++i) hits[size_t(i)].fetch_add(1, std::memory_order_relaxed);
            });
        } else {
            pool.parallel_for(n, [&](int64_t b, int64_t e, int) {
                for (int64_t i = b; i < e; ++i) hits[size_t(i)].fetch_add(1, std::memory_order_relaxed);
            });
        }
        for (int64_t i = 0; i < n; ++i)
            if (hits[size_t(i)].load() != 1) fail("job ", j, ": index ", i, " ran ", hits[size_t(i)].load(), " times");
    }
    return jobs;
}

}  // namespace

void bind_ops(py::module_& m) {
    m.def("_ops_threadpool_stress", &threadpool_stress, py::arg("n_threads"), py::arg("jobs"));
    m.def("_ops_quantize_act", &quantize_act_hook, py::arg("x"), py::arg("format"), py::arg("isa") = py::none());
    m.def("_ops_dot", [](F32 a, F32 b, const std::optional<std::string>& isa) {
        need(a.ndim() == 1 && b.ndim() == 1 && a.shape(0) == b.shape(0), "a and b must be 1-D of one length");
        return table(isa).dot_f32(a.data(), b.data(), a.shape(0));
    }, py::arg("a"), py::arg("b"), py::arg("isa") = py::none());
    m.def("_ops_dot_f16", [](py::array_t<uint16_t, py::array::c_style> a, F32 b, const std::optional<std::string>& isa) {
        need(a.ndim() == 1 && b.ndim() == 1 && a.shape(0) == b.shape(0), "a and b must be 1-D of one length");
        return table(isa).dot_f16(a.data(), b.data(), a.shape(0));
    }, py::arg("a"), py::arg("b"), py::arg("isa") = py::none());
    m.def("_ops_axpy", [](F32 y, F32 x, float a, bool x_f16, const std::optional<std::string>& isa) {
        need(y.ndim() == 1 && x.ndim() == 1 && y.shape(0) == x.shape(0), "x and y must be 1-D of one length");
        py::array_t<float> out(y.shape(0));
        std::memcpy(out.mutable_data(), y.data(), sizeof(float) * size_t(y.shape(0)));
        if (x_f16) {
            std::vector<uint16_t> h(size_t(x.shape(0)));
            for (size_t i = 0; i < h.size(); ++i) h[i] = fp32_to_fp16(x.data()[i]);
            table(isa).axpy_f16(out.mutable_data(), h.data(), a, x.shape(0));
        } else {
            table(isa).axpy_f32(out.mutable_data(), x.data(), a, x.shape(0));
        }
        return out;
    }, py::arg("y"), py::arg("x"), py::arg("a"), py::arg("x_f16") = false, py::arg("isa") = py::none());
    m.def("_ops_matmul", &matmul_hook, py::arg("w"), py::arg("type"), py::arg("cols"), py::arg("x"), py::arg("isa") = py::none(),
          py::arg("n_threads") = 1, py::arg("layout") = "file");
    m.def("_ops_matmul_time", &matmul_time_hook, py::arg("w"), py::arg("type"), py::arg("cols"), py::arg("n_tokens"),
          py::arg("n_threads"), py::arg("repeats") = 5);
    m.def("_ops_unpack_row", &unpack_row_hook, py::arg("w"), py::arg("type"), py::arg("cols"), py::arg("row"));
    m.def("_ops_gated", [](F32 gate, F32 up, const std::string& kind, const std::optional<std::string>& isa) {
        need(gate.ndim() == 1 && up.ndim() == 1 && gate.shape(0) == up.shape(0), "gate and up must be 1-D of one length");
        need(kind == "silu" || kind == "gelu_tanh", "kind must be silu or gelu_tanh");
        py::array_t<float> out(gate.shape(0));
        std::memcpy(out.mutable_data(), gate.data(), sizeof(float) * size_t(gate.shape(0)));
        const KernelTable& k = table(isa);
        (kind == "silu" ? k.silu_mul : k.gelu_tanh_mul)(out.mutable_data(), up.data(), gate.shape(0));
        return out;
    }, py::arg("gate"), py::arg("up"), py::arg("kind"), py::arg("isa") = py::none());
    m.def("_ops_rms_norm", &rms_norm_hook, py::arg("x"), py::arg("w") = py::none(), py::arg("eps") = 1e-5f);
    m.def("_ops_softmax", &softmax_hook, py::arg("x"));
    m.def("_ops_rope", &rope_hook, py::arg("x"), py::arg("pos"), py::arg("n_dims"), py::arg("style") = "normal",
          py::arg("freq_base") = 10000.0f, py::arg("freq_scale") = 1.0f, py::arg("scaling") = "none", py::arg("ext_factor") = 0.0f,
          py::arg("attn_factor") = 1.0f, py::arg("beta_fast") = 32.0f, py::arg("beta_slow") = 1.0f, py::arg("n_ctx_orig") = 0,
          py::arg("freq_factors") = py::none());
    m.def("_ops_attention_batch", &attention_batch_hook, py::arg("q"), py::arg("k"), py::arg("v"), py::arg("first"),
          py::arg("last"), py::arg("scale"), py::arg("block_size") = 16, py::arg("f16") = true, py::arg("shuffle_seed") = 0,
          py::arg("isa") = py::none(), py::arg("key_rows") = false);
    m.def("_ops_attention", &attention_hook, py::arg("q"), py::arg("k"), py::arg("v"), py::arg("j0"), py::arg("j1"),
          py::arg("scale"), py::arg("block_size") = 16, py::arg("f16") = true, py::arg("shuffle_seed") = 0,
          py::arg("isa") = py::none(), py::arg("key_rows") = false);
}
