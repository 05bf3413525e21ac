// ref.h — scalar reference kernels: the specification every SIMD path is tested against.
// Row functions take n elements (a multiple of the type's block size).
#pragma once

#include <cstdint>

namespace ember::ref {

// --- dequantize: blocks -> float32 ------------------------------------------------------
void dequantize_row_f32(const void* x, float* y, int64_t n);
void dequantize_row_f16(const void* x, float* y, int64_t n);
void dequantize_row_bf16(const void* x, float* y, int64_t n);
void dequantize_row_f64(const void* x, float* y, int64_t n);
void dequantize_row_i8(const void* x, float* y, int64_t n);
void dequantize_row_i16(const void* x, float* y, int64_t n);
void dequantize_row_i32(const void* x, float* y, int64_t n);
void dequantize_row_i64(const void* x, float* y, int64_t n);
void dequantize_row_q4_0(const void* x, float* y, int64_t n);
void dequantize_row_q4_1(const void* x, float* y, int64_t n);
void dequantize_row_q5_0(const void* x, float* y, int64_t n);
void dequantize_row_q5_1(const void* x, float* y, int64_t n);
void dequantize_row_q8_0(const void* x, float* y, int64_t n);
void dequantize_row_q8_1(const void* x, float* y, int64_t n);
void dequantize_row_q2_K(const void* x, float* y, int64_t n);
void dequantize_row_q3_K(const void* x, float* y, int64_t n);
void dequantize_row_q4_K(const void* x, float* y, int64_t n);
void dequantize_row_q5_K(const void* x, float* y, int64_t n);
void dequantize_row_q6_K(const void* x, float* y, int64_t n);
void dequantize_row_q8_K(const void* x, float* y, int64_t n);

// --- quantize: float32 -> blocks (ggml's reference rounding, bit for bit) -----------------
void quantize_row_f32(const float* x, void* y, int64_t n);
void quantize_row_f16(const float* x, void* y, int64_t n);
void quantize_row_bf16(const float* x, void* y, int64_t n);
void quantize_row_q4_0(const float* x, void* y, int64_t n);
void quantize_row_q4_1(const float* x, void* y, int64_t n);
void quantize_row_q5_0(const float* x, void* y, int64_t n);
void quantize_row_q5_1(const float* x, void* y, int64_t n);
void quantize_row_q8_0(const float* x, void* y, int64_t n);
void quantize_row_q8_1(const float* x, void* y, int64_t n);
void quantize_row_q8_K(const float* x, void* y, int64_t n);

// Q4_K / Q5_K: scale and min of sub-block j (0..7) from the 12 packed bytes.
void unpack_scale_min_k4(int j, const uint8_t* q, uint8_t* sc, uint8_t* m);

// --- K-quant quantizers: searched scales, not bit-compatible with any reference ----------
// (quantize_k.cpp; the round-trip error bounds are documented there and tested)
void quantize_row_q4_K(const float* x, void* y, int64_t n);
void quantize_row_q5_K(const float* x, void* y, int64_t n);
void quantize_row_q6_K(const float* x, void* y, int64_t n);

}  // namespace ember::ref
