// weights.cpp — finds and checks every tensor (see weights.h).
#include "model/weights.h"

#include <atomic>
#include <cstring>
#include <thread>
#include <utility>

#include "common.h"
#include "gguf.h"
#include "mapped_file.h"
#include "model/arch.h"
#include "quants/dispatch.h"
#include "quants/packed.h"
#include "quants/packed_float.h"

namespace ember {

namespace {

struct Loader {
    const GGUFFile& f;
    const HParams& hp;
    Weights& w;

    template <class... A>
    [[noreturn]] void error(const std::string& name, const A&... a) const {
        fail<GGUFError>("GGUF file '", f.path(), "': tensor '", name, "': ", a...);
    }

    const GGUFTensorInfo* find(const std::string& name, bool required) const {
        const GGUFTensorInfo* t = f.find_tensor(name);
        if (!t && required) error(name, "missing (the ", hp.traits->name, " architecture needs it)");
        return t;
    }

    static std::string shape_text(const GGUFTensorInfo& t) {
        std::string s = "[";
        for (uint32_t d = 0; d < t.n_dims; ++d) s += (d ? ", " : "") + std::to_string(t.ne[d]);
        return s + "]";
    }

    // A matrix of `rows` rows of `cols` elements (ggml order: ne0 = cols), used in place.
    TensorView matrix(const std::string& name, int64_t cols, int64_t rows, bool required = true, bool at_least_rows = false) {
        const GGUFTensorInfo* t = find(name, required);
        if (!t) return {};
        const bool rows_ok = at_least_rows ? t->n_rows() >= rows : t->n_rows() == rows;
        if (t->n_dims != 2 || t->ne[0] != cols || !rows_ok)
            error(name, "has shape ", shape_text(*t), " (ggml order), expected [", cols, ", ", rows, "]");
        if (!can_dequantize(t->type))
            error(name, "has type ", type_traits(t->type).name, ", which ember cannot compute with");
        // Block structs hold fp16 fields: rows must be 2-byte aligned (4 for Q8_K), which any
        // GGUF alignment >= 4 guarantees; refuse the odd file rather than misread it.
        if (reinterpret_cast<uintptr_t>(t->data) % 4 != 0)
            error(name, "data is not 4-byte aligned in the file (general.alignment ", f.alignment(), ")");
        TensorView v;
        v.type = t->type;
        v.ne0 = cols;
        v.n_rows = t->n_rows();
        v.row_bytes = row_size(t->type, cols);
        v.data = t->data;
        w.matrix_bytes += t->nbytes;
        return v;
    }

    // A vector of n float32 values: in place when stored as aligned F32, else dequantized once.
    TensorView vector(const std::string& name, int64_t n, bool required = true) {
        const GGUFTensorInfo* t = find(name, required);
        if (!t) return {};
        if (t->n_elements != n || t->ne[0] != n) error(name, "has shape ", shape_text(*t), " (ggml order), expected [", n, "]");
        if (!can_dequantize(t->type)) error(name, "has type ", type_traits(t->type).name, ", which ember cannot read");
        TensorView v;
        v.type = GGMLType::F32;
        v.ne0 = n;
        v.n_rows = 1;
        v.row_bytes = uint64_t(n) * 4;
        if (t->type == GGMLType::F32 && reinterpret_cast<uintptr_t>(t->data) % alignof(float) == 0) {
            v.data = t->data;
        } else {
            std::vector<float>& copy = w.owned.emplace_back(size_t(n));
            dequantize_rows(t->type, t->data, copy.data(), 1, n);
            v.data = reinterpret_cast<const uint8_t*>(copy.data());
        }
        return v;
    }
};

}  // namespace

void load_weights(const GGUFFile& file, const HParams& hp, Weights& w) {
    namespace tn = tensor_name;
    Loader L{file, hp, w};
    const int64_t e = hp.n_embd, q = hp.q_dim(), k = hp.k_dim(), v = hp.v_dim(), ff = hp.n_ff, hd = hp.head_dim_k;
    const ArchTraits& a = *hp.traits;

    // The embedding table may carry padding rows past the tokenizer's vocabulary; only the
    // tokenizer's ids are ever looked up or scored.
    w.token_embd = L.matrix(tn::token_embd, e, hp.n_vocab, true, true);
    w.output_norm = L.vector(tn::output_norm, e);
    w.output = L.matrix(tn::output, e, hp.n_vocab, false, true);
    w.tied_embeddings = w.output.empty();
    if (w.tied_embeddings) w.output = w.token_embd;
    if (hp.rope.n_dims > 0) w.rope_freqs = L.vector(tn::rope_freqs, hp.rope.n_dims / 2, false);

    w.layers.resize(size_t(hp.n_layer));
    for (int il = 0; il < hp.n_layer; ++il) {
        LayerWeights& l = w.layers[size_t(il)];
        auto name = [il](const char* base, const char* kind = "weight") { return tn::layer(il, base, kind); };
        l.attn_norm = L.vector(name("attn_norm"), e);
        l.wq = L.matrix(name("attn_q"), e, q);
        l.wk = L.matrix(name("attn_k"), e, k);
        l.wv = L.matrix(name("attn_v"), e, v);
        l.wo = L.matrix(name("attn_output"), q, e);
        l.bq = L.vector(name("attn_q", "bias"), q, false);
        l.bk = L.vector(name("attn_k", "bias"), k, false);
        l.bv = L.vector(name("attn_v", "bias"), v, false);
        l.bo = L.vector(name("attn_output", "bias"), e, false);
        if (a.qk_norm) {
            l.q_norm = L.vector(name("attn_q_norm"), hd);
            l.k_norm = L.vector(name("attn_k_norm"), hd);
        }
        l.ffn_norm = L.vector(name("ffn_norm"), e);
        l.ffn_gate = L.matrix(name("ffn_gate"), e, ff);
        l.ffn_up = L.matrix(name("ffn_up"), e, ff);
        l.ffn_down = L.matrix(name("ffn_down"), ff, e);
        if (a.sandwich_norms) {
            l.post_attn_norm = L.vector(name("post_attention_norm"), e);
            l.post_ffw_norm = L.vector(name("post_ffw_norm"), e);
        }
    }
}

}  // namespace ember

namespace ember {

// Bytes of the packed copy of one matrix (0: nothing to pack).
static uint64_t packed_bytes(const TensorView& v, const KernelTable& k) {
    if (v.empty()) return 0;
    if (k.packed_tile[uint32_t(v.type)]) return packed_size(v.type, v.n_rows, v.ne0);
    if (k.float_tile[uint32_t(v.type)]) return packed_float_size(v.type, v.n_rows, v.ne0);
    return 0;
}

void pack_weights(Weights& w, const KernelTable& k, const MappedFile& file) {
    // One buffer for all the packed matrices (huge pages: the decoding step streams them all),
    // each matrix at a 64-byte boundary.
    std::vector<std::pair<TensorView*, uint64_t>> jobs;  // matrix, offset in the buffer
    uint64_t total = 0;
    auto add = [&](TensorView& v) {
        if (const uint64_t bytes = packed_bytes(v, k)) {
            jobs.emplace_back(&v, total);
            total += (bytes + 63) / 64 * 64;
        }
    };
    for (LayerWeights& l : w.layers)
        for (TensorView* v : {&l.wq, &l.wk, &l.wv, &l.wo, &l.ffn_gate, &l.ffn_up, &l.ffn_down}) add(*v);
    add(w.output);
    try {
        w.packed_storage = BigBuffer(total, /*huge_pages=*/true);
    } catch (const CapacityError&) {
        fail<CapacityError>("could not allocate ", total >> 20, " MiB to repack weights");
    }
    w.packed_bytes = total;
    uint8_t* const base = w.packed_storage.data();
    // Repacking is a pass over every weight: spread the matrices over the CPUs.
    std::atomic<size_t> next{0};
    auto work = [&] {
        for (size_t i = next++; i < jobs.size(); i = next++) {
            TensorView& v = *jobs[i].first;
            uint8_t* dst = base + jobs[i].second;
            if (k.packed_tile[uint32_t(v.type)]) pack_rows(v.type, v.data, v.row_bytes, v.n_rows, v.ne0, dst);
            else pack_float_rows(v.type, v.data, v.row_bytes, v.n_rows, v.ne0, dst);
            // the file's copy is not read again: give its pages back at once (a lower peak), but
            // the token embedding's rows are still looked up (a tied output head shares them)
            if (v.data != w.token_embd.data) file.release(v.data, uint64_t(v.n_rows) * v.row_bytes);
        }
    };
    const size_t n_threads = std::min<size_t>(jobs.size(), std::max(1u, std::thread::hardware_concurrency()));
    std::vector<std::thread> threads;
    for (size_t t = 1; t < n_threads; ++t) threads.emplace_back(work);
    work();
    for (std::thread& t : threads) t.join();
    for (auto& [v, offset] : jobs) v->packed = base + offset;
}

}  // namespace ember
