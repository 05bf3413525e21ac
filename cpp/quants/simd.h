// simd.h — declarations of the ISA-specific kernels. Each ISA lives in one file compiled with its
// own flags; only dispatch.cpp takes their addresses, and only after checking the CPU.
#pragma once

#include <cstdint>

namespace ember::avx2 {
void dequantize_row_f16(const void* x, float* y, int64_t n);
void dequantize_row_bf16(const void* x, float* y, int64_t n);
void dequantize_row_q4_0(const void* x, float* y, int64_t n);
void dequantize_row_q4_1(const void* x, float* y, int64_t n);
void dequantize_row_q8_0(const void* x, float* y, int64_t n);
void quantize_row_f16(const float* x, void* y, int64_t n);
}  // namespace ember::avx2

namespace ember::neon {
void dequantize_row_f16(const void* x, float* y, int64_t n);
void dequantize_row_bf16(const void* x, float* y, int64_t n);
void dequantize_row_q4_0(const void* x, float* y, int64_t n);
void dequantize_row_q8_0(const void* x, float* y, int64_t n);
void quantize_row_f16(const float* x, void* y, int64_t n);
}  // namespace ember::neon
