// quantize_rules.cpp — the tables behind quantize_rules.h, with llama.cpp's rules as data.
//
// Facts from llama.cpp's src/llama-quant.cpp (read for the rules, not copied):
//  - which tensors are quantized: tensor_allows_quantization;
//  - what each tensor gets in a Q4_K_M / Q5_K_M mix: llama_tensor_get_type_impl;
//  - what replaces a type whose block does not divide the row length: tensor_type_fallback.
// llama.cpp walks the tensors sorted by layer number, then name (the model loader's
// weight_name_comparer), and its "use more bits" counters advance in that order, so
// plan_tensor_types does the same even though the output keeps the input's tensor order.
#include "quantize_rules.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <string_view>

#include "common.h"

namespace ember {

using G = GGMLType;

// ------------------------------------------------------------------------------------------
// The TYPEs. Single types quantize every quantizable tensor to that type (llama.cpp's --pure,
// so output.weight is not bumped to Q6_K); the K-quant singles carry the file type llama.cpp
// writes for a pure K-quant file (Q4_K_S / Q5_K_S / Q6_K). The _m mixes apply kMixRules.
static const std::vector<QuantTarget> kTargets = {
    {"f16",    G::F16,  false, 1,  "MOSTLY_F16"},
    {"bf16",   G::BF16, false, 32, "MOSTLY_BF16"},
    {"q8_0",   G::Q8_0, false, 7,  "MOSTLY_Q8_0"},
    {"q4_0",   G::Q4_0, false, 2,  "MOSTLY_Q4_0"},
    {"q4_1",   G::Q4_1, false, 3,  "MOSTLY_Q4_1"},
    {"q5_0",   G::Q5_0, false, 8,  "MOSTLY_Q5_0"},
    {"q5_1",   G::Q5_1, false, 9,  "MOSTLY_Q5_1"},
    {"q4_k",   G::Q4_K, false, 14, "MOSTLY_Q4_K_S"},
    {"q5_k",   G::Q5_K, false, 16, "MOSTLY_Q5_K_S"},
    {"q6_k",   G::Q6_K, false, 18, "MOSTLY_Q6_K"},
    {"q4_k_m", G::Q4_K, true,  15, "MOSTLY_Q4_K_M"},
    {"q5_k_m", G::Q5_K, true,  17, "MOSTLY_Q5_K_M"},
};

const std::vector<QuantTarget>& quant_targets() { return kTargets; }

const QuantTarget* quant_target_by_name(const std::string& name) {
    std::string lower;
    for (char c : name) lower += char(std::tolower(static_cast<unsigned char>(c)));
    for (const QuantTarget& t : kTargets)
        if (lower == t.name) return &t;
    return nullptr;
}

std::string quant_target_names() {
    std::string out;
    for (const QuantTarget& t : kTargets) out += (out.empty() ? "" : ", ") + std::string(t.name);
    return out;
}

// ------------------------------------------------------------------------------------------
// Which tensors are quantized (tensor_allows_quantization). A tensor must have at least two
// dimensions that are not 1 (ggml_n_dims), a name ending in "weight", and none of these:
struct NameRule {
    const char* text;
    bool exact;        // the whole name, or (false) anywhere in it
    const char* why;
};
static const NameRule kNotQuantized[] = {
    {"_norm.weight", false, "norms"},
    {"ffn_gate_inp.weight", false, "MoE router (expert gating)"},
    {"ffn_gate_tid2eid.weight", false, "token-id -> expert-id table (DeepSeek-V4)"},
    {"altup", false, "Gemma 3n altup: tiny"},
    {"laurel", false, "Gemma 3n laurel: tiny"},
    {"per_layer_model_proj", false, "Gemma 3n: small, kept as is"},
    {"position_embd.weight", true, "learned position embeddings"},
    {"token_types.weight", true, "BERT token types"},
    {"ssm_conv1d", false, "Mamba conv1d: tiny"},
    {"shortconv.conv.weight", false, "LFM2 short conv: tiny"},
    {"indexer.k_proj.weight", false, "indexer projections: tiny"},
    {"indexer.q_proj.weight", false, "indexer projections: tiny"},
    {"time_mix_first.weight", false, "RWKV: small 2-D"},
    {"time_mix_w0.weight", false, "RWKV"},
    {"time_mix_w1.weight", false, "RWKV"},
    {"time_mix_w2.weight", false, "RWKV"},
    {"time_mix_v0.weight", false, "RWKV"},
    {"time_mix_v1.weight", false, "RWKV"},
    {"time_mix_v2.weight", false, "RWKV"},
    {"time_mix_a0.weight", false, "RWKV"},
    {"time_mix_a1.weight", false, "RWKV"},
    {"time_mix_a2.weight", false, "RWKV"},
    {"time_mix_g1.weight", false, "RWKV"},
    {"time_mix_g2.weight", false, "RWKV"},
    {"time_mix_decay_w1.weight", false, "RWKV"},
    {"time_mix_decay_w2.weight", false, "RWKV"},
    {"time_mix_lerp_fused.weight", false, "RWKV"},
    {"attn_rel_b.weight", false, "T5 relative position bias"},
    {".position_embd", false, "multimodal position embeddings"},
    {"sam.pos_embd", false, "multimodal"},
    {"sam.neck.", false, "multimodal"},
    {"sam.net_", false, "multimodal"},
    {".rel_pos", false, "multimodal"},
    {".patch_embd", false, "multimodal"},
    {".patch_merger", false, "multimodal"},
    {"a.rvq.codebook", false, "audio codebook"},
    {"mm.a.code_embd", false, "audio codebook"},
};

static int effective_dims(const GGUFTensorInfo& t) {  // ggml_n_dims: trailing 1s do not count
    int n = 4;
    while (n > 1 && t.ne[n - 1] == 1) --n;
    return n;
}

bool tensor_is_quantizable(const GGUFTensorInfo& t) {
    if (effective_dims(t) < 2) return false;
    const std::string_view name = t.name;
    if (name.size() < 6 || name.substr(name.size() - 6) != "weight") return false;
    for (const NameRule& r : kNotQuantized)
        if (r.exact ? name == r.text : name.find(r.text) != std::string_view::npos) return false;
    return true;
}

// ------------------------------------------------------------------------------------------
// Tensor roles (llama.cpp's tensor_get_category): the first row that matches wins.
enum class Role { Output, TokenEmbd, AttnV, AttnK, AttnQ, AttnOutput, FfnUp, FfnGate, FfnDown, Other };

static const struct {
    const char* text;
    bool exact;
    Role role;
} kRoles[] = {
    {"output.weight", true, Role::Output},
    {"token_embd.weight", true, Role::TokenEmbd},
    {"per_layer_token_embd.weight", true, Role::TokenEmbd},
    {"attn_qkv.weight", false, Role::AttnV},   // fused QKV and MLA's kv_b are treated like attn_v
    {"attn_kv_b.weight", false, Role::AttnV},
    {"attn_v.weight", false, Role::AttnV},
    {"attn_k.weight", false, Role::AttnK},
    {"attn_q.weight", false, Role::AttnQ},
    {"attn_output.weight", false, Role::AttnOutput},
    {"ffn_up", false, Role::FfnUp},
    {"ffn_gate", false, Role::FfnGate},
    {"ffn_down", false, Role::FfnDown},
};

static Role role_of(std::string_view name) {
    for (const auto& r : kRoles)
        if (r.exact ? name == r.text : name.find(r.text) != std::string_view::npos) return r.role;
    return Role::Other;
}

// ------------------------------------------------------------------------------------------
// The Q4_K_M / Q5_K_M mixes (llama_tensor_get_type_impl). Every tensor starts at the mix's base
// type (Q4_K or Q5_K); then every row below whose mix, role and conditions all match sets the
// type, top to bottom, so a later row overrides an earlier one.
//
// "More bits" layers are llama.cpp's use_more_bits(i, n): the first n/8 layers, the last n/8
// (i >= 7n/8), and every third layer in between ((i - n/8) % 3 == 2). For attn_v, i counts the
// attn_v-like tensors in layer order and n is their number; for ffn_down, i counts ffn_down
// tensors in layer order (or is parsed from "blk.N." in MoE models) and n is block_count.
// Role::Output is output.weight, and token_embd.weight when there is no output.weight (tied
// embeddings: llama.cpp gives the shared matrix the output's type).
enum Cond : uint32_t {
    MoreBits = 1 << 0,        // use_more_bits(layer)
    NotMoreBits = 1 << 1,
    FirstSixteenth = 1 << 2,  // layer < n/16
    Falcon = 1 << 3,          // general.architecture == "falcon"
    NotFalcon = 1 << 4,
    EightExperts = 1 << 5,    // expert_count == 8 (Mixtral-like)
    Model70B = 1 << 6,        // llama, 80 layers, fewer KV heads than heads
    RowNotBase = 1 << 7,      // row length not a multiple of the base type's block
};

constexpr uint64_t ft(uint32_t file_type) { return uint64_t(1) << file_type; }
constexpr uint64_t Q4_K_M = ft(15), Q5_K_M = ft(17);

struct MixRule {
    uint64_t mixes;   // which file types the row belongs to
    Role role;
    uint32_t when;    // Cond bits, all required
    GGMLType type;
};

static const MixRule kMixRules[] = {
    // output.weight (or the tied token_embd): Q6_K; Q8_0 for Falcon or when the row length
    // does not fit the base type's 256-blocks
    {Q4_K_M | Q5_K_M, Role::Output,     0,                       G::Q6_K},
    {Q4_K_M | Q5_K_M, Role::Output,     Falcon,                  G::Q8_0},
    {Q4_K_M | Q5_K_M, Role::Output,     RowNotBase,              G::Q8_0},
    // attn_v (attn_qkv, attn_kv_b): Q6_K on the more-bits layers; 70B llamas share attn_v
    // across 8 heads, so the rest go from Q4_K to Q5_K; 8-expert models: Q8_0 throughout
    {Q4_K_M | Q5_K_M, Role::AttnV,      MoreBits,                G::Q6_K},
    {Q4_K_M,          Role::AttnV,      Model70B | NotMoreBits,  G::Q5_K},
    {Q4_K_M | Q5_K_M, Role::AttnV,      EightExperts,            G::Q8_0},
    // attn_k: Q8_0 in 8-expert models
    {Q4_K_M | Q5_K_M, Role::AttnK,      EightExperts,            G::Q8_0},
    // ffn_down: Q6_K on the more-bits layers; Falcon in Q4_K_M: Q5_K there and Q6_K on the
    // first sixteenth
    {Q4_K_M,          Role::FfnDown,    NotFalcon | MoreBits,    G::Q6_K},
    {Q4_K_M,          Role::FfnDown,    Falcon | MoreBits,       G::Q5_K},
    {Q4_K_M,          Role::FfnDown,    Falcon | FirstSixteenth, G::Q6_K},
    {Q5_K_M,          Role::FfnDown,    MoreBits,                G::Q6_K},
    // attn_output: Q5_K in 8-expert models (Q4_K_M only)
    {Q4_K_M,          Role::AttnOutput, NotFalcon | EightExperts, G::Q5_K},
};

static bool use_more_bits(int64_t i, int64_t n) {
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

// ------------------------------------------------------------------------------------------
// When a type's block does not divide the row length (tensor_type_fallback): K-quants fall back
// to the 32-block type of about the same size. If that does not fit either (row length not a
// multiple of 32), the tensor stays F16 — llama.cpp's last resort, which ember also uses for
// the 32-block targets where llama.cpp would refuse.
static const struct {
    GGMLType from, to;
} kFallback[] = {
    {G::Q4_K, G::Q5_0},
    {G::Q5_K, G::Q5_1},
    {G::Q6_K, G::Q8_0},
};

static GGMLType fit_row_length(GGMLType type, int64_t ne0, bool* fell_back) {
    if (ne0 % type_traits(type).block_size == 0) return type;
    *fell_back = true;
    for (const auto& f : kFallback)
        if (f.from == type && ne0 % type_traits(f.to).block_size == 0) return f.to;
    return G::F16;
}

// ------------------------------------------------------------------------------------------

static const GGUFValue* find_value(const GGUFFile& f, const std::string& key) {
    const GGUFKeyValue* kv = f.find(key);
    return kv ? &kv->value : nullptr;
}

// An unsigned integer from the metadata, or `fallback` when absent or not a non-negative integer.
static int64_t get_uint(const GGUFFile& f, const std::string& key, int64_t fallback) {
    const GGUFValue* v = find_value(f, key);
    if (!v) return fallback;
    switch (v->type) {
        case GGUFType::UINT8: case GGUFType::UINT16: case GGUFType::UINT32: case GGUFType::UINT64:
            return v->u > uint64_t(INT64_MAX) ? fallback : int64_t(v->u);
        case GGUFType::INT8: case GGUFType::INT16: case GGUFType::INT32: case GGUFType::INT64:
            return v->i < 0 ? fallback : v->i;
        default: return fallback;
    }
}

// The layer of "blk.N.*" as llama.cpp's loader reads it; -1 for other names.
static int64_t layer_of(std::string_view name) {
    if (name.substr(0, 4) != "blk.") return -1;
    int64_t n = 0;
    size_t k = 4;
    for (; k < name.size() && k < 4 + 9 && std::isdigit(static_cast<unsigned char>(name[k])); ++k) n = n * 10 + (name[k] - '0');
    return k == 4 ? -1 : n;
}

ModelFacts model_facts(const GGUFFile& file) {
    ModelFacts m;
    if (const GGUFValue* a = find_value(file, "general.architecture"); a && a->type == GGUFType::STRING) m.arch = std::string(a->str);
    int64_t highest_layer = -1;
    for (const GGUFTensorInfo& t : file.tensors()) {
        highest_layer = std::max(highest_layer, layer_of(t.name));
        if (role_of(t.name) == Role::Output) m.tied_embeddings = false;
    }
    // llama.cpp takes block_count from the metadata (its loader requires it); a file without
    // it gets the number of blk.N layers among its tensors.
    m.n_layer = get_uint(file, m.arch + ".block_count", highest_layer + 1);
    m.n_expert = get_uint(file, m.arch + ".expert_count", 0);
    const int64_t n_head = get_uint(file, m.arch + ".attention.head_count", 0);
    const int64_t n_head_kv = get_uint(file, m.arch + ".attention.head_count_kv", n_head);
    m.is_70b = m.arch == "llama" && m.n_layer == 80 && n_head != n_head_kv;
    return m;
}

std::vector<TensorPlan> plan_tensor_types(const GGUFFile& file, const QuantTarget& target) {
    const std::vector<GGUFTensorInfo>& tensors = file.tensors();
    const ModelFacts facts = model_facts(file);
    std::vector<TensorPlan> plan(tensors.size());

    // llama.cpp's order: by layer (non-layer tensors first), then by name.
    std::vector<size_t> order(tensors.size());
    for (size_t k = 0; k < order.size(); ++k) order[k] = k;
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        const int64_t la = layer_of(tensors[a].name), lb = layer_of(tensors[b].name);
        return la != lb ? la < lb : tensors[a].name < tensors[b].name;
    });

    int64_t n_attn_v = 0;
    for (const GGUFTensorInfo& t : tensors) n_attn_v += role_of(t.name) == Role::AttnV;
    int64_t i_attn_v = 0, i_ffn_down = 0;
    const bool falcon = facts.arch == "falcon";

    for (size_t k : order) {
        const GGUFTensorInfo& t = tensors[k];
        TensorPlan& p = plan[k];
        p.quantizable = tensor_is_quantizable(t);
        p.fallback = false;
        if (!p.quantizable) {
            p.type = t.type;
            continue;
        }
        GGMLType type = target.base;
        if (target.mix) {
            Role role = role_of(t.name);
            if (role == Role::TokenEmbd && facts.tied_embeddings) role = Role::Output;
            // the layer position the more-bits rules look at
            int64_t layer = 0, n_layer = 1;
            if (role == Role::AttnV) {
                layer = i_attn_v++;
                n_layer = n_attn_v;
            } else if (role == Role::FfnDown) {
                layer = i_ffn_down++;
                n_layer = facts.n_layer;
                if (facts.n_expert > 1) {  // MoE: expert tensors are not one per layer in order
                    layer = layer_of(t.name);
                    if (layer < 0 || layer >= n_layer)
                        fail<GGUFError>("GGUF file '", file.path(), "': tensor '", t.name, "': cannot tell its layer (block_count ",
                                        n_layer, ")");
                }
            }
            uint32_t holds = 0;
            holds |= use_more_bits(layer, n_layer) ? MoreBits : NotMoreBits;
            if (layer < n_layer / 16) holds |= FirstSixteenth;
            holds |= falcon ? Falcon : NotFalcon;
            if (facts.n_expert == 8) holds |= EightExperts;
            if (facts.is_70b) holds |= Model70B;
            if (t.ne[0] % type_traits(target.base).block_size != 0) holds |= RowNotBase;
            for (const MixRule& r : kMixRules)
                if ((r.mixes & ft(target.file_type)) && r.role == role && (r.when & holds) == r.when) type = r.type;
        }
        p.type = fit_row_length(type, t.ne[0], &p.fallback);
    }
    return plan;
}

}  // namespace ember
