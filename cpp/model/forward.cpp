// forward.cpp — one decoder-only transformer, written once for every architecture in arch.h:
//
//   x = embed(tokens)                               (* sqrt(n_embd) for Gemma)
//   for each layer:
//     h = rms_norm(x) * attn_norm
//     q, k, v = h Wq (+bq), h Wk (+bk), h Wv (+bv)  (q/k RMSNorm per head for Qwen3, Gemma 3)
//     q, k = rope(q, pos), rope(k, pos)              (the layer's own RoPE base for Gemma 3)
//     cache[seq, pos] = k, v
//     a = softmax(q k^T * scale over the visible positions) v      (causal; a window on SWA layers)
//     o = a Wo (+bo)                                 (then rms_norm(o) * post_attention_norm for Gemma)
//     x = x + o
//     h = rms_norm(x) * ffn_norm
//     f = (act(h Wgate) * (h Wup)) Wdown            (SiLU, or GELU-tanh for Gemma; post_ffw_norm)
//     x = x + f
//   logits = rms_norm(x) * output_norm  Wout        (for the tokens that asked; Gemma's soft cap)
//
// Tensors are rows of floats, one row per token of the micro-batch: [T, width].
#include "model/forward.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

#include "ops/attention.h"
#include "ops/norm.h"
#include "ops/rope.h"
#include "threadpool.h"

namespace ember {

// Query tokens per attention work item: enough to share each converted tile of keys and values,
// few enough that a long prompt makes many items for the threads to share.
static constexpr int32_t kAttnTokens = 16;

static int64_t max_row_length(const HParams& hp) {
    return std::max<int64_t>({hp.n_embd, hp.n_ff, hp.q_dim()});
}

ForwardBuffers::ForwardBuffers(const HParams& hp, int32_t n_batch_, int32_t n_ctx_, int n_threads)
    : n_batch(n_batch_),
      n_ctx(n_ctx_),
      x(size_t(n_batch_) * size_t(hp.n_embd)),
      xb(x.size()),
      q(size_t(n_batch_) * size_t(hp.q_dim())),
      k(size_t(n_batch_) * size_t(hp.k_dim())),
      v(size_t(n_batch_) * size_t(hp.v_dim())),
      att(q.size()),
      proj(x.size()),
      gate(size_t(n_batch_) * size_t(hp.n_ff)),
      up(gate.size()),
      rope_cs(size_t(n_batch_) * size_t(hp.rope.n_dims)),
      rope_cs_swa(size_t(n_batch_) * size_t(hp.rope_swa.n_dims)),
      attn_scratch_floats(attend_batch_scratch(kAttnTokens * (hp.n_head / hp.n_head_kv), hp.head_dim_k, n_ctx_)),
      attn_max_queries(size_t(kAttnTokens) * size_t(hp.n_head / hp.n_head_kv)),
      attn_scratch(size_t(n_threads) * attn_scratch_floats),
      attn_q(size_t(n_threads) * attn_max_queries),
      attn_out(attn_q.size()),
      attn_first(attn_q.size()),
      attn_last(attn_q.size()),
      mm(n_threads, max_row_length(hp), n_batch_) {
    out_rows.reserve(size_t(n_batch_));
    attn_tasks.reserve(size_t(n_batch_) * size_t(hp.n_head));
}

namespace {

// Everything one micro-batch needs, so the steps below read as the paper names them.
struct Pass {
    const Model& model;
    const HParams& hp;
    const Batch& batch;
    int32_t begin, T;  // tokens batch[begin .. begin+T)
    KVCache& kv;
    ThreadPool& pool;
    ForwardBuffers& buf;
    const KernelTable& k;

    // Row-wise RMSNorm of T rows of width n (in may equal out).
    void norm_rows(const float* in, const TensorView& w, int64_t n, float* out) {
        pool.parallel_guided(T, 4, [&](int64_t t0, int64_t t1, int) {
            for (int64_t t = t0; t < t1; ++t) rms_norm(in + t * n, w.f32(), n, hp.norm_eps, out + t * n);
        });
    }

    void add_bias(float* y, const TensorView& b, int64_t n) {
        if (b.empty()) return;
        for (int64_t t = 0; t < T; ++t)
            for (int64_t i = 0; i < n; ++i) y[t * n + i] += b.f32()[i];
    }

    void embed() {
        const TensorView& emb = model.weights().token_embd;
        const DequantizeRowFn dequantize = k.dequantize[uint32_t(emb.type)];
        const float scale = hp.traits->embedding_scale ? float(std::sqrt(double(hp.n_embd))) : 1.0f;
        for (int32_t t = 0; t < T; ++t) {
            float* x = buf.x.data() + int64_t(t) * hp.n_embd;
            dequantize(emb.row(batch.token[size_t(begin + t)]), x, hp.n_embd);
            if (scale != 1.0f)
                for (int32_t i = 0; i < hp.n_embd; ++i) x[i] *= scale;
        }
    }

    // Attention work items: runs of consecutive tokens of one sequence (at most kAttnTokens),
    // each against every KV head; a small batch also splits each KV head's group of query
    // heads, so that even one token gives the threads work. Results do not depend on the split.
    void attention_tasks() {
        buf.attn_tasks.clear();
        const int32_t group = hp.n_head / hp.n_head_kv;
        auto run_end = [&](int32_t t) {
            int32_t e = t + 1;
            while (e < T && e - t < kAttnTokens && batch.seq[size_t(begin + e)] == batch.seq[size_t(begin + t)]) ++e;
            return e;
        };
        int32_t n_runs = 0;
        for (int32_t t = 0; t < T; t = run_end(t)) ++n_runs;
        const int32_t split = int64_t(n_runs) * hp.n_head_kv >= 2 * pool.size() ? 1 : std::min(group, 2 * pool.size());
        for (int32_t t = 0, e; t < T; t = e) {
            e = run_end(t);
            for (int32_t kvh = 0; kvh < hp.n_head_kv; ++kvh)
                for (int32_t s = 0; s < split; ++s) {
                    const int32_t h0 = group * s / split, h1 = group * (s + 1) / split;
                    if (h1 > h0) buf.attn_tasks.push_back({t, e - t, kvh, kvh * group + h0, h1 - h0});
                }
        }
    }

    void rope_tables() {
        const float* factors = model.weights().rope_freqs.empty() ? nullptr : model.weights().rope_freqs.f32();
        for (int32_t t = 0; t < T; ++t) {
            const int32_t pos = batch.pos[size_t(begin + t)];
            rope_cos_sin(hp.rope, factors, pos, buf.rope_cs.data() + int64_t(t) * hp.rope.n_dims);
            if (hp.traits->sliding_window)
                rope_cos_sin(hp.rope_swa, nullptr, pos, buf.rope_cs_swa.data() + int64_t(t) * hp.rope_swa.n_dims);
        }
    }

    void attention(int il) {
        const LayerWeights& L = model.weights().layers[size_t(il)];
        const bool swa = hp.swa_layers[size_t(il)];
        const int32_t qd = hp.q_dim(), kd = hp.k_dim(), vd = hp.v_dim(), hd = hp.head_dim_k;
        float *q = buf.q.data(), *kk = buf.k.data(), *v = buf.v.data();

        norm_rows(buf.x.data(), L.attn_norm, hp.n_embd, buf.xb.data());     // [T, n_embd]
        const MatmulOut qkv[3] = {{&L.wq, q, qd}, {&L.wk, kk, kd}, {&L.wv, v, vd}};
        matmul(qkv, 3, buf.xb.data(), hp.n_embd, T, pool, buf.mm, k);     // [T, q_dim], [T, k_dim], [T, v_dim]
        add_bias(q, L.bq, qd);
        add_bias(kk, L.bk, kd);
        add_bias(v, L.bv, vd);

        // per-head q/k norms, RoPE, and the new keys and values into the cache
        const RopeParams& rp = swa ? hp.rope_swa : hp.rope;
        const float* cs_all = swa ? buf.rope_cs_swa.data() : buf.rope_cs.data();
        pool.parallel_guided(T, 2, [&](int64_t t0, int64_t t1, int) {
            for (int64_t t = t0; t < t1; ++t) {
                float* qt = q + t * qd;
                float* kt = kk + t * kd;
                if (hp.traits->qk_norm) {
                    for (int32_t h = 0; h < hp.n_head; ++h) rms_norm(qt + h * hd, L.q_norm.f32(), hd, hp.norm_eps, qt + h * hd);
                    for (int32_t h = 0; h < hp.n_head_kv; ++h) rms_norm(kt + h * hd, L.k_norm.f32(), hd, hp.norm_eps, kt + h * hd);
                }
                const float* cs = cs_all + t * rp.n_dims;
                rope_apply(qt, hp.n_head, hd, rp.n_dims, hp.traits->rope_style, cs);
                rope_apply(kt, hp.n_head_kv, hd, rp.n_dims, hp.traits->rope_style, cs);
                const int32_t s = batch.seq[size_t(begin + t)], pos = batch.pos[size_t(begin + t)];
                uint8_t* kpos = kv.k_pos(il, s, pos);
                uint8_t* vrow = kv.v_row(il, s, pos);
                for (int32_t h = 0; h < hp.n_head_kv; ++h) {  // the cache keeps each head's rows together
                    store(kt + h * hd, kpos + uint64_t(h) * kv.k_head_stride(), hd, kv.k_dim_stride());
                    store(v + t * vd + h * hp.head_dim_v, vrow + uint64_t(h) * kv.v_head_stride(), hp.head_dim_v,
                          kv.elem_bytes());
                }
            }
        });

        // attention: each work item is a run of one sequence's tokens against one KV head
        const bool f16 = kv.params().type == GGMLType::F16;
        // a work item's keys and values: its KV head in its sequence's blocks
        auto kv_rows = [&](const ForwardBuffers::AttnTask& task) {
            const std::vector<int32_t>& blocks = kv.seq_blocks(batch.seq[size_t(begin + task.token)]);
            return std::make_pair(
                PagedRows{kv.k_layer(il) + uint64_t(task.kv_head) * kv.k_head_stride(), kv.k_block_stride(),
                          kv.elem_bytes(), kv.params().block_size, blocks.data(), f16, kv.k_dim_stride()},
                PagedRows{kv.v_layer(il) + uint64_t(task.kv_head) * kv.v_head_stride(), kv.v_block_stride(),
                          kv.v_row_bytes(), kv.params().block_size, blocks.data(), f16});
        };
        auto first_pos = [&](int32_t pos) { return swa && hp.n_swa > 0 ? std::max(0, pos - hp.n_swa + 1) : 0; };
        pool.parallel_tasks(int64_t(buf.attn_tasks.size()), [&](int64_t ti, int thread) {
            const ForwardBuffers::AttnTask& task = buf.attn_tasks[size_t(ti)];
            const size_t base = size_t(thread) * buf.attn_max_queries;
            const float** qp = buf.attn_q.data() + base;
            float** op = buf.attn_out.data() + base;
            int32_t* first = buf.attn_first.data() + base;
            int32_t* last = buf.attn_last.data() + base;
            int32_t n = 0;
            for (int32_t t = task.token; t < task.token + task.n_tokens; ++t) {
                const int32_t pos = batch.pos[size_t(begin + t)];
                for (int32_t h = task.head0; h < task.head0 + task.n_heads; ++h, ++n) {
                    qp[n] = q + int64_t(t) * qd + h * hd;
                    op[n] = buf.att.data() + int64_t(t) * qd + h * hd;
                    first[n] = first_pos(pos);
                    last[n] = pos;
                }
            }
            const auto [kr, vr] = kv_rows(task);
            // The item this thread most likely takes next (the threads claim them in turn) into L2: a
            // decoding batch's KV comes from memory, in blocks far apart (~4% at 16 sequences, measured)
            if (ti + pool.size() < int64_t(buf.attn_tasks.size())) {
                const ForwardBuffers::AttnTask& next = buf.attn_tasks[size_t(ti + pool.size())];
                const auto [nk, nv] = kv_rows(next);
                prefetch_kv(nk, nv, first_pos(batch.pos[size_t(begin + next.token)]),
                            batch.pos[size_t(begin + next.token + next.n_tokens - 1)], hd, 64 << 10);
            }
            const AttnQueries queries{qp, op, first, last, n};
            k.attend_batch(queries, hd, kr, vr, hp.attn_scale, buf.attn_scratch.data() + size_t(thread) * buf.attn_scratch_floats, k);
        });

        matmul(L.wo, buf.att.data(), qd, T, buf.proj.data(), hp.n_embd, pool, buf.mm, k);   // [T, n_embd]
        add_bias(buf.proj.data(), L.bo, hp.n_embd);
        if (hp.traits->sandwich_norms) norm_rows(buf.proj.data(), L.post_attn_norm, hp.n_embd, buf.proj.data());
        residual();
    }

    void feed_forward(int il) {
        const LayerWeights& L = model.weights().layers[size_t(il)];
        norm_rows(buf.x.data(), L.ffn_norm, hp.n_embd, buf.xb.data());      // [T, n_embd]
        const MatmulOut gate_up[2] = {{&L.ffn_gate, buf.gate.data(), hp.n_ff}, {&L.ffn_up, buf.up.data(), hp.n_ff}};
        matmul(gate_up, 2, buf.xb.data(), hp.n_embd, T, pool, buf.mm, k);   // [T, n_ff] twice
        const GatedFn act = hp.traits->activation == Activation::GELUTanh ? k.gelu_tanh_mul : k.silu_mul;
        // In pieces of 512 values of one row: the kernels take 8 values at a time and their tail
        // another way (a scalar exponential), so a piece must start where a row, or a multiple of
        // 8 into it, does: then every value is computed the same way whatever the batch and the
        // thread count (flat pieces of the whole batch had broken batch invariance).
        constexpr int64_t kChunk = 512;
        const int64_t chunks = (hp.n_ff + kChunk - 1) / kChunk;
        pool.parallel_guided(int64_t(T) * chunks, 4096 / kChunk, [&](int64_t u0, int64_t u1, int) {
            for (int64_t u = u0; u < u1; ++u) {
                const int64_t t = u / chunks, c0 = u % chunks * kChunk, n = std::min<int64_t>(kChunk, hp.n_ff - c0);
                act(buf.gate.data() + t * hp.n_ff + c0, buf.up.data() + t * hp.n_ff + c0, n);
            }
        });
        matmul(L.ffn_down, buf.gate.data(), hp.n_ff, T, buf.proj.data(), hp.n_embd, pool, buf.mm, k);  // [T, n_embd]
        if (hp.traits->sandwich_norms) norm_rows(buf.proj.data(), L.post_ffw_norm, hp.n_embd, buf.proj.data());
        residual();
    }

    void residual() {
        pool.parallel_guided(T, 4, [&](int64_t t0, int64_t t1, int) {
            for (int64_t i = t0 * hp.n_embd; i < t1 * hp.n_embd; ++i) buf.x[size_t(i)] += buf.proj[size_t(i)];
        });
    }

    // n elements into the cache in its type, element i at dst + i * stride: a value row (stride
    // the element size) or a key's column of its block (stride k_dim_stride(): the cache keeps
    // keys dimension-major, kv_cache.h). fp16 is converted a chunk at a time, then scattered.
    void store(const float* src, uint8_t* dst, int32_t n, uint64_t stride) {
        const bool f16 = kv.params().type == GGMLType::F16;
        const uint64_t elem = f16 ? 2 : 4;
        if (stride == elem) {
            if (f16) k.quantize[uint32_t(GGMLType::F16)](src, dst, n);
            else std::memcpy(dst, src, sizeof(float) * size_t(n));
            return;
        }
        uint16_t half[256];
        for (int32_t i0 = 0; i0 < n; i0 += 256) {
            const int32_t m = std::min<int32_t>(256, n - i0);
            const uint8_t* from = reinterpret_cast<const uint8_t*>(src + i0);
            if (f16) {
                k.quantize[uint32_t(GGMLType::F16)](src + i0, reinterpret_cast<uint8_t*>(half), m);
                from = reinterpret_cast<const uint8_t*>(half);
            }
            for (int32_t i = 0; i < m; ++i) std::memcpy(dst + uint64_t(i0 + i) * stride, from + uint64_t(i) * elem, elem);
        }
    }

    // The final norm and the output head, only for the tokens that asked for logits.
    void logits(float* out) {
        buf.out_rows.clear();
        for (int32_t t = 0; t < T; ++t)
            if (batch.logits[size_t(begin + t)]) buf.out_rows.push_back(t);
        const int32_t n_out = int32_t(buf.out_rows.size());
        if (n_out == 0) return;
        for (int32_t i = 0; i < n_out; ++i)                                     // [n_out, n_embd]
            rms_norm(buf.x.data() + int64_t(buf.out_rows[size_t(i)]) * hp.n_embd, model.weights().output_norm.f32(),
                     hp.n_embd, hp.norm_eps, buf.xb.data() + int64_t(i) * hp.n_embd);
        TensorView head = model.weights().output;
        head.n_rows = hp.n_vocab;  // padding rows past the tokenizer's vocabulary are never scored
        matmul(head, buf.xb.data(), hp.n_embd, n_out, out, hp.n_vocab, pool, buf.mm, k);   // [n_out, n_vocab]
        if (hp.final_logit_softcap > 0.0f) {
            const float cap = hp.final_logit_softcap;
            for (int64_t i = 0; i < int64_t(n_out) * hp.n_vocab; ++i) out[i] = cap * std::tanh(out[i] / cap);
        }
    }
};

}  // namespace

void forward(const Model& model, const Batch& batch, int32_t begin, int32_t end, KVCache& kv, ThreadPool& pool,
             ForwardBuffers& buf, const KernelTable& k, float* logits) {
    Pass p{model, model.hparams(), batch, begin, end - begin, kv, pool, buf, k};
    p.embed();
    p.rope_tables();
    p.attention_tasks();
    for (int il = 0; il < p.hp.n_layer; ++il) {
        p.attention(il);
        p.feed_forward(il);
    }
    p.logits(logits);
}

}  // namespace ember
