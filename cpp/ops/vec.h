// vec.h — the vector kernels of the forward pass: dot products and scaled adds over float32
// and fp16 data (activations, KV cache rows). Scalar references in vec_ref.cpp are the
// specification; vec_avx2.cpp and vec_neon.cpp are checked against them and float64 numpy. The
// dispatch table (quants/dispatch.h) picks one set per instruction set.
//
// The reductions use a fixed order for a given n (never one that depends on threads or batch
// shape), so a dot product gives the same bits wherever it is computed.
#pragma once

#include <cstdint>

namespace ember {

using DotF32Fn = float (*)(const float* a, const float* b, int64_t n);
using DotF16Fn = float (*)(const uint16_t* a, const float* b, int64_t n);  // a in fp16
using AxpyF32Fn = void (*)(float* y, const float* x, float a, int64_t n);   // y += a * x
using AxpyF16Fn = void (*)(float* y, const uint16_t* x, float a, int64_t n);
using GatedFn = void (*)(float* gate, const float* up, int64_t n);          // gate = act(gate) * up

namespace ref {
float dot_f32(const float* a, const float* b, int64_t n);
float dot_f16(const uint16_t* a, const float* b, int64_t n);
void axpy_f32(float* y, const float* x, float a, int64_t n);
void axpy_f16(float* y, const uint16_t* x, float a, int64_t n);
// The gated feed-forward's nonlinearities: SiLU, and GELU with the tanh approximation.
void silu_mul(float* gate, const float* up, int64_t n);
void gelu_tanh_mul(float* gate, const float* up, int64_t n);
}  // namespace ref

namespace avx2 {
float dot_f32(const float* a, const float* b, int64_t n);
float dot_f16(const uint16_t* a, const float* b, int64_t n);
void axpy_f32(float* y, const float* x, float a, int64_t n);
void axpy_f16(float* y, const uint16_t* x, float a, int64_t n);
void silu_mul(float* gate, const float* up, int64_t n);
void gelu_tanh_mul(float* gate, const float* up, int64_t n);
}  // namespace avx2

namespace neon {  // vec_neon.cpp (AArch64 only)
float dot_f32(const float* a, const float* b, int64_t n);
float dot_f16(const uint16_t* a, const float* b, int64_t n);
void axpy_f32(float* y, const float* x, float a, int64_t n);
void axpy_f16(float* y, const uint16_t* x, float a, int64_t n);
void silu_mul(float* gate, const float* up, int64_t n);
void gelu_tanh_mul(float* gate, const float* up, int64_t n);
}  // namespace neon

}  // namespace ember
