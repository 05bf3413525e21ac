// tensor.h — a typed, read-only view of a 1-D or 2-D tensor: rows of a ggml type, usually
// pointing straight into the memory-mapped GGUF file (weights are never copied or
// dequantized whole). Kernels take these; they know nothing of what the tensor means.
#pragma once

#include <cstdint>

#include "quants/types.h"

namespace ember {

struct TensorView {
    GGMLType type = GGMLType::F32;
    int64_t ne0 = 0;            // row length (elements), ggml's ne[0]
    int64_t n_rows = 0;         // ne[1] * ne[2] * ne[3]
    uint64_t row_bytes = 0;
    const uint8_t* data = nullptr;
    const uint8_t* packed = nullptr;  // the same rows repacked for the SIMD kernels (quants/packed.h), if any

    bool empty() const { return data == nullptr; }
    const uint8_t* row(int64_t r) const { return data + uint64_t(r) * row_bytes; }
    const float* f32() const { return reinterpret_cast<const float*>(data); }  // when type == F32
};

}  // namespace ember
