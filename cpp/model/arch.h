// arch.h — the architectures ember runs, as data: what each one's decoder layer contains and
// how its tensors are named in GGUF. The forward pass (forward.cpp) is written once and reads
// these traits; adding a llama-shaped family is a new row in the table (arch.cpp).
#pragma once

#include <string>
#include <string_view>

#include "ops/rope.h"

namespace ember {

enum class Arch { Llama, Qwen2, Qwen3, Gemma3 };
enum class Activation { SiLU, GELUTanh };

struct ArchTraits {
    Arch arch;
    const char* name;          // general.architecture
    RopeStyle rope_style;
    Activation activation;     // of the gate in the gated feed-forward
    bool qk_norm;              // RMSNorm over each head of q and k before RoPE (Qwen3, Gemma 3)
    bool sandwich_norms;       // RMSNorm also after attention and after the FFN (Gemma 3)
    bool embedding_scale;      // token embeddings multiplied by sqrt(n_embd) (Gemma)
    bool sliding_window;       // interleaved sliding-window and global layers (Gemma 3)
};

// nullptr when ember does not run this architecture.
const ArchTraits* arch_traits(std::string_view name);
// "llama, qwen2, qwen3, gemma3" for error messages.
std::string supported_arch_names();

// GGUF tensor names (llama.cpp's), global and per layer ("blk.<i>.<name>.weight").
namespace tensor_name {
constexpr const char* token_embd = "token_embd.weight";
constexpr const char* output_norm = "output_norm.weight";
constexpr const char* output = "output.weight";
constexpr const char* rope_freqs = "rope_freqs.weight";
std::string layer(int il, const char* base, const char* kind = "weight");
}  // namespace tensor_name

}  // namespace ember
