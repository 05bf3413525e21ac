// types.h — the ggml tensor type table: ids as GGUF stores them, names, block geometry.
// Names as data: every other file asks this table instead of switching on ids.
#pragma once

#include <cstdint>
#include <string>

namespace ember {

enum class GGMLType : uint32_t {
    F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
    Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
    IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22,
    IQ4_XS = 23, I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, IQ1_M = 29, BF16 = 30,
    TQ1_0 = 34, TQ2_0 = 35, MXFP4 = 39,
};
constexpr uint32_t kMaxTypeId = 40;  // ids are < this

struct TypeTraits {
    GGMLType type;
    const char* name;    // as ggml and gguf-py spell it, e.g. "Q4_K"
    int64_t block_size;  // elements per block
    int64_t type_size;   // bytes per block
};

// nullptr when id is not a ggml type this build knows.
const TypeTraits* type_traits(uint32_t id);
inline const TypeTraits& type_traits(GGMLType t) { return *type_traits(uint32_t(t)); }
// Case-insensitive lookup ("q4_k", "Q4_K"); nullptr when unknown.
const TypeTraits* type_by_name(const std::string& name);

// Bytes of a row of n elements (n must be a multiple of the block size).
inline uint64_t row_size(GGMLType t, int64_t n) {
    const TypeTraits& tr = type_traits(t);
    return uint64_t(n / tr.block_size) * uint64_t(tr.type_size);
}

}  // namespace ember
