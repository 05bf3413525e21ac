// quantize_rules.h — which tensor gets which type when a model is quantized.
//
// The quantizer (quantize.h) asks this file two things: what the user's TYPE means (a single
// ggml type for every quantizable tensor, or one of llama.cpp's mixes), and the type of each
// tensor of a given file. The answers follow llama.cpp's quantizer (src/llama-quant.cpp:
// tensor_allows_quantization, llama_tensor_get_type, tensor_type_fallback), so an ember Q4_K_M
// file has the tensor types llama.cpp would give it. No data is touched here: names, shapes
// and a few hyper-parameters in, types out.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gguf.h"
#include "quants/types.h"

namespace ember {

// One value of `ember quantize ... TYPE`.
struct QuantTarget {
    const char* name;       // as the user types it: "q4_k_m"
    GGMLType base;          // the type most tensors get
    bool mix;               // true: llama.cpp's per-tensor rules for this file type apply
    uint32_t file_type;     // general.file_type, llama.cpp's LLAMA_FTYPE numbering
    const char* file_type_name;  // "MOSTLY_Q4_K_M", as gguf-py's LlamaFileType spells it
};

// Case-insensitive; nullptr when unknown.
const QuantTarget* quant_target_by_name(const std::string& name);
// "f16, bf16, q8_0, ..." for messages and help texts.
std::string quant_target_names();
const std::vector<QuantTarget>& quant_targets();

// The hyper-parameters llama.cpp's rules look at, read from the file's metadata.
struct ModelFacts {
    std::string arch;        // general.architecture ("" when absent)
    int64_t n_layer = 0;     // {arch}.block_count, or the number of ffn_down tensors when absent
    int64_t n_expert = 0;    // {arch}.expert_count, 0 when absent
    bool is_70b = false;     // llama.cpp's LLM_TYPE_70B: llama with 80 layers and grouped KV heads
    bool tied_embeddings = true;  // no output.weight: token_embd doubles as the output matrix
};
ModelFacts model_facts(const GGUFFile& file);

// Does llama.cpp quantize this tensor at all? (2-D or more, a "*weight" that is not a norm,
// position embedding, router, ... — see the table in quantize_rules.cpp.) Others are copied.
bool tensor_is_quantizable(const GGUFTensorInfo& t);

struct TensorPlan {
    GGMLType type;           // the type in the output file
    bool quantizable;        // tensor_is_quantizable; false: kept in its source type
    bool fallback;           // the rules' choice did not fit the row length and was replaced
};

// The output type of every tensor of `file`, in the file's order.
std::vector<TensorPlan> plan_tensor_types(const GGUFFile& file, const QuantTarget& target);

}  // namespace ember
