// hparams.cpp — reads and checks the {arch}.* keys (see hparams.h).
//
// Defaults are llama.cpp's where a key may be absent: head_count_kv = head_count, key/value
// length = n_embd / n_head, rope.dimension_count = key length, freq_base 10000; Gemma 3's
// sliding-window layers use base 10000 and every sixth layer is global unless the file carries
// rope.freq_base_swa or attention.sliding_window_pattern.
#include "model/hparams.h"

#include <cmath>

#include "common.h"
#include "gguf.h"

namespace ember {

namespace {

struct Reader {
    const GGUFFile& f;
    std::string prefix;  // "llama."

    template <class... A>
    [[noreturn]] void error(const std::string& key, const A&... a) const {
        fail<GGUFError>("GGUF file '", f.path(), "': key '", key, "': ", a...);
    }
    static bool is_int(GGUFType t) {
        return t != GGUFType::STRING && t != GGUFType::ARRAY && t != GGUFType::FLOAT32 && t != GGUFType::FLOAT64 &&
               t != GGUFType::BOOL;
    }
    const GGUFValue* find(const std::string& key) const {
        const GGUFKeyValue* kv = f.find(key);
        return kv ? &kv->value : nullptr;
    }
    // An integer key of this architecture in [lo, hi]; `fallback` when absent and not required.
    int64_t integer(const std::string& name, bool required, int64_t fallback, int64_t lo, int64_t hi) const {
        const std::string key = prefix + name;
        const GGUFValue* v = find(key);
        if (!v) {
            if (required) error(key, "missing (needed to run this model)");
            return fallback;
        }
        if (!is_int(v->type)) error(key, "must be an integer, not ", gguf_type_name(v->type));
        if (is_unsigned(v->type) ? v->u > uint64_t(hi) || int64_t(v->u) < lo : v->i < lo || v->i > hi)
            error(key, "value ", is_unsigned(v->type) ? std::to_string(v->u) : std::to_string(v->i), " is outside [", lo, ", ",
                  hi, "]");
        return is_unsigned(v->type) ? int64_t(v->u) : v->i;
    }
    static bool is_unsigned(GGUFType t) {
        return t == GGUFType::UINT8 || t == GGUFType::UINT16 || t == GGUFType::UINT32 || t == GGUFType::UINT64;
    }
    float real(const std::string& name, float fallback, float lo, float hi) const {
        const std::string key = prefix + name;
        const GGUFValue* v = find(key);
        if (!v) return fallback;
        if (!is_int(v->type) && v->type != GGUFType::FLOAT32 && v->type != GGUFType::FLOAT64)
            error(key, "must be a number, not ", gguf_type_name(v->type));
        const double x = v->f;  // the reader widens every numeric type into f
        if (!std::isfinite(x) || x < lo || x > hi) error(key, "value ", x, " is outside [", lo, ", ", hi, "]");
        return float(x);
    }
    std::string text(const std::string& name, const std::string& fallback) const {
        const std::string key = prefix + name;
        const GGUFValue* v = find(key);
        if (!v) return fallback;
        if (v->type != GGUFType::STRING) error(key, "must be a string");
        return std::string(v->str);
    }
};

constexpr int64_t kMaxDim = 1 << 20;

RopeParams read_rope(const Reader& r, int32_t head_dim, int32_t n_ctx_train) {
    RopeParams p;
    p.n_dims = int32_t(r.integer("rope.dimension_count", false, head_dim, 2, head_dim));
    if (p.n_dims % 2) r.error(r.prefix + "rope.dimension_count", "must be even, got ", p.n_dims);
    p.freq_base = r.real("rope.freq_base", 10000.0f, 1e-3f, 1e12f);
    const std::string type = r.text("rope.scaling.type", "");
    // the legacy key holds the linear factor itself
    float factor = r.real("rope.scale_linear", 0.0f, 0.0f, 1e6f);
    factor = r.real("rope.scaling.factor", factor, 0.0f, 1e6f);
    if (type == "linear" || (type.empty() && factor > 0.0f && factor != 1.0f)) {
        p.scaling = RopeScaling::Linear;
    } else if (type == "yarn") {
        p.scaling = RopeScaling::YaRN;
        p.ext_factor = r.real("rope.scaling.yarn_ext_factor", 1.0f, 0.0f, 1e3f);
        p.attn_factor = r.real("rope.scaling.attn_factor", 1.0f, 1e-3f, 1e3f);
        p.beta_fast = r.real("rope.scaling.yarn_beta_fast", 32.0f, 0.0f, 1e4f);
        p.beta_slow = r.real("rope.scaling.yarn_beta_slow", 1.0f, 0.0f, 1e4f);
        p.n_ctx_orig = int32_t(r.integer("rope.scaling.original_context_length", false, n_ctx_train, 1, INT32_MAX));
        if (p.n_ctx_orig <= 0) r.error(r.prefix + "rope.scaling.original_context_length", "missing (needed by YaRN)");
    } else if (!type.empty() && type != "none") {
        r.error(r.prefix + "rope.scaling.type", "RoPE scaling '", type, "' is not supported (none, linear, yarn)");
    }
    if (p.scaling != RopeScaling::None) {
        if (!(factor > 0.0f)) r.error(r.prefix + "rope.scaling.factor", "missing or zero for ", type.empty() ? "linear" : type, " scaling");
        p.freq_scale = 1.0f / factor;
    }
    return p;
}

}  // namespace

HParams load_hparams(const GGUFFile& file) {
    const GGUFKeyValue* arch_kv = file.find("general.architecture");
    if (!arch_kv || arch_kv->value.type != GGUFType::STRING)
        fail<GGUFError>("GGUF file '", file.path(), "': key 'general.architecture': missing (not a model file?)");
    const std::string arch(arch_kv->value.str);
    HParams hp;
    hp.traits = arch_traits(arch);
    if (!hp.traits)
        fail<GGUFError>("GGUF file '", file.path(), "': architecture '", arch, "' is not supported (supported: ",
                        supported_arch_names(), ")");
    Reader r{file, arch + "."};
    hp.n_ctx_train = int32_t(r.integer("context_length", false, 0, 0, INT32_MAX));
    hp.n_embd = int32_t(r.integer("embedding_length", true, 0, 1, kMaxDim));
    hp.n_layer = int32_t(r.integer("block_count", true, 0, 1, 4096));
    hp.n_ff = int32_t(r.integer("feed_forward_length", true, 0, 1, kMaxDim));
    hp.n_head = int32_t(r.integer("attention.head_count", true, 0, 1, 4096));
    hp.n_head_kv = int32_t(r.integer("attention.head_count_kv", false, hp.n_head, 1, hp.n_head));
    if (hp.n_head % hp.n_head_kv)
        r.error(r.prefix + "attention.head_count_kv", hp.n_head_kv, " does not divide head_count ", hp.n_head);
    const int32_t default_head = hp.n_embd % hp.n_head == 0 ? hp.n_embd / hp.n_head : 0;
    hp.head_dim_k = int32_t(r.integer("attention.key_length", default_head == 0, default_head, 1, 4096));
    hp.head_dim_v = int32_t(r.integer("attention.value_length", false, hp.head_dim_k, 1, 4096));
    if (hp.head_dim_v != hp.head_dim_k)
        r.error(r.prefix + "attention.value_length", hp.head_dim_v, " differs from key_length ", hp.head_dim_k,
                " (not supported)");
    hp.norm_eps = r.real("attention.layer_norm_rms_epsilon", 1e-5f, 0.0f, 1.0f);
    hp.attn_scale = r.real("attention.scale", 1.0f / std::sqrt(float(hp.head_dim_k)), 1e-6f, 1e3f);
    hp.final_logit_softcap = r.real("final_logit_softcapping", 0.0f, 0.0f, 1e6f);

    hp.rope = read_rope(r, hp.head_dim_k, hp.n_ctx_train);
    hp.swa_layers.assign(size_t(hp.n_layer), false);
    if (hp.traits->sliding_window) {
        hp.n_swa = int32_t(r.integer("attention.sliding_window", false, 0, 0, INT32_MAX));
        hp.rope_swa = hp.rope;
        hp.rope_swa.freq_base = r.real("rope.freq_base_swa", 10000.0f, 1e-3f, 1e12f);
        hp.rope_swa.freq_scale = 1.0f;
        hp.rope_swa.scaling = RopeScaling::None;
        hp.rope_swa.ext_factor = 0.0f;
        if (hp.n_swa > 0) {
            const std::string key = r.prefix + "attention.sliding_window_pattern";
            const GGUFValue* pat = r.find(key);
            if (pat && pat->type == GGUFType::ARRAY) {
                // one bool per layer, true where the layer attends within the window
                if (pat->elem_type != GGUFType::BOOL || pat->count != uint64_t(hp.n_layer))
                    r.error(key, "must be an array of ", hp.n_layer, " bools");
                for (int32_t il = 0; il < hp.n_layer; ++il) hp.swa_layers[size_t(il)] = pat->elem_uint(uint64_t(il)) != 0;
            } else {
                // every period-th layer is global (llama.cpp's fixed pattern for Gemma 3 is 6)
                const int64_t period = r.integer("attention.sliding_window_pattern", false, 6, 1, 4096);
                for (int32_t il = 0; il < hp.n_layer; ++il) hp.swa_layers[size_t(il)] = il % period < period - 1;
            }
        }
    }
    return hp;
}

}  // namespace ember
