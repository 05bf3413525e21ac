// arch.cpp — the architecture table (see arch.h).
#include "model/arch.h"

namespace ember {

// Mistral converts to "llama" in GGUF (llama.cpp's converter and ember's both do).
static const ArchTraits kArchs[] = {
    //  arch          name      rope               activation             qk_norm sandwich emb_scale swa
    {Arch::Llama,  "llama",  RopeStyle::Normal, Activation::SiLU,     false, false, false, false},
    {Arch::Qwen2,  "qwen2",  RopeStyle::NeoX,   Activation::SiLU,     false, false, false, false},
    {Arch::Qwen3,  "qwen3",  RopeStyle::NeoX,   Activation::SiLU,     true,  false, false, false},
    {Arch::Gemma3, "gemma3", RopeStyle::NeoX,   Activation::GELUTanh, true,  true,  true,  true},
};

const ArchTraits* arch_traits(std::string_view name) {
    for (const ArchTraits& a : kArchs)
        if (name == a.name) return &a;
    return nullptr;
}

std::string supported_arch_names() {
    std::string out;
    for (const ArchTraits& a : kArchs) out += (out.empty() ? "" : ", ") + std::string(a.name);
    return out;
}

std::string tensor_name::layer(int il, const char* base, const char* kind) {
    return "blk." + std::to_string(il) + "." + base + "." + kind;
}

}  // namespace ember
