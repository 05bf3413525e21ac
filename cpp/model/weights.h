// weights.h — the model's tensors as typed views into the GGUF mapping, found by their
// llama.cpp names and checked against the hyper-parameters (presence, shape, a type ember can
// compute with) when the model loads, so the forward pass indexes without further checks.
//
// Matrices stay in their file type, in place. Vectors (norm weights, biases, RoPE factors) are
// tiny and read on every token, so they are kept as float32: in place when the file stores
// them so, otherwise dequantized once into storage owned here.
#pragma once

#include <cstdint>
#include <deque>
#include <vector>

#include "big_buffer.h"
#include "model/hparams.h"
#include "tensor.h"

namespace ember {

class GGUFFile;

struct LayerWeights {
    TensorView attn_norm;                  // [n_embd]
    TensorView wq, wk, wv, wo;             // [q_dim x n_embd], [k_dim x n_embd], [v_dim x n_embd], [n_embd x q_dim]
    TensorView bq, bk, bv, bo;             // optional biases
    TensorView q_norm, k_norm;             // [head_dim] (qk_norm architectures)
    TensorView post_attn_norm;             // [n_embd] (sandwich norms)
    TensorView ffn_norm;                   // [n_embd]
    TensorView ffn_gate, ffn_up;           // [n_ff x n_embd]
    TensorView ffn_down;                   // [n_embd x n_ff]
    TensorView post_ffw_norm;              // [n_embd] (sandwich norms)
};

struct Weights {
    TensorView token_embd;                 // [n_vocab x n_embd]
    TensorView output_norm;                // [n_embd]
    TensorView output;                     // [n_vocab x n_embd]; token_embd when tied
    TensorView rope_freqs;                 // optional [rope.n_dims / 2] frequency divisors (Llama 3.1)
    bool tied_embeddings = false;
    std::vector<LayerWeights> layers;
    std::deque<std::vector<float>> owned;  // float32 copies of vectors stored in other types
    uint64_t matrix_bytes = 0;             // bytes of the matrices, as stored
    // Matrices repacked for the SIMD kernels (TensorView::packed points in here).
    BigBuffer packed_storage;
    uint64_t packed_bytes = 0;
};

// Throws GGUFError naming the tensor: missing, wrong shape, or a type ember cannot compute with.
// (Weights must not be copied: views point into `owned`.)
void load_weights(const GGUFFile& file, const HParams& hp, Weights& out);

struct KernelTable;
// Repack every matrix whose type has a packed kernel in k (quants/packed.h). The token
// embedding keeps its file layout for lookups; when tied, the output head gets a packed copy.
// The file's pages of the matrices packed are released afterwards (they are not read again).
class MappedFile;
void pack_weights(Weights& w, const KernelTable& k, const MappedFile& file);

}  // namespace ember
