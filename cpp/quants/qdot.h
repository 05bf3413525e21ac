// qdot.h — integer dot products: weight rows in a ggml block type against activations that
// the matmul quantizes once per call (llama.cpp's scheme: int8 x int4/5/8 products summed in
// int32, one float multiply-add per block).
//
// Activation formats:
//   A8  — ember's own block of 32 for the 32-element weight types: float scale d, float
//         s = d * sum(qs) (which folds Q4_1/Q5_1 minimums and Q4_0/Q5_0 offsets into one
//         multiply per block), 32 int8 values in [-127, 127]. Floats rather than ggml's fp16
//         scales: activations never leave memory, so there is no reason to round them twice.
//   Q8K — ggml's block_q8_K (256 values, float d, int16 sums per 16) for the K-quants.
//
// A tile kernel computes out[t * ldo + r] = row r . activation row t for nr <= 4 weight rows
// and nt <= 4 activation rows at once (weights unpacked once, activations loaded once). Every
// output is computed by the same sequence of operations whatever nr and nt are, so a matrix
// -vector product and a blocked matrix-matrix product give the same bits for a token (batch
// invariance). The scalar references in qdot_ref.cpp are the specification; SIMD versions are
// tested against them and against float64 numpy.
#pragma once

#include <cstdint>

#include "quants/types.h"

namespace ember {

struct block_a8 {
    float d;         // scale: x ~= d * qs
    float s;         // d * sum(qs)
    int8_t qs[32];
};
static_assert(sizeof(block_a8) == 40, "block_a8 size");

enum class ActFormat : uint8_t { None, A8, Q8K };

// The activation format a weight type's integer kernel takes (None: it has none; the matmul
// then dequantizes the weights to float).
ActFormat act_format(GGMLType weight_type);
// Bytes of one activation row of n values (n a multiple of the format's block size).
uint64_t act_row_size(ActFormat f, int64_t n);

using QuantizeActFn = void (*)(const float* x, void* y, int64_t n);
using DotTileFn = void (*)(int64_t n, const uint8_t* w, uint64_t w_stride, int nr, const uint8_t* a, uint64_t a_stride,
                           int nt, float* out, int64_t ldo);
constexpr int kTileRows = 4, kTileCols = 4;

namespace ref {
void quantize_row_a8(const float* x, void* y, int64_t n);
void quantize_row_q8k_act(const float* x, void* y, int64_t n);
// The scalar tile kernels: each output is the plain block-by-block sum.
void dot_tile_q4_0(int64_t, const uint8_t*, uint64_t, int, const uint8_t*, uint64_t, int, float*, int64_t);
void dot_tile_q4_1(int64_t, const uint8_t*, uint64_t, int, const uint8_t*, uint64_t, int, float*, int64_t);
void dot_tile_q5_0(int64_t, const uint8_t*, uint64_t, int, const uint8_t*, uint64_t, int, float*, int64_t);
void dot_tile_q5_1(int64_t, const uint8_t*, uint64_t, int, const uint8_t*, uint64_t, int, float*, int64_t);
void dot_tile_q8_0(int64_t, const uint8_t*, uint64_t, int, const uint8_t*, uint64_t, int, float*, int64_t);
void dot_tile_q4_K(int64_t, const uint8_t*, uint64_t, int, const uint8_t*, uint64_t, int, float*, int64_t);
void dot_tile_q5_K(int64_t, const uint8_t*, uint64_t, int, const uint8_t*, uint64_t, int, float*, int64_t);
void dot_tile_q6_K(int64_t, const uint8_t*, uint64_t, int, const uint8_t*, uint64_t, int, float*, int64_t);
}  // namespace ref

namespace avx2 {
void quantize_row_a8(const float* x, void* y, int64_t n);
void quantize_row_q8k_act(const float* x, void* y, int64_t n);
void dot_tile_q4_0(int64_t, const uint8_t*, uint64_t, int, const uint8_t*, uint64_t, int, float*, int64_t);
void dot_tile_q4_1(int64_t, const uint8_t*, uint64_t, int, const uint8_t*, uint64_t, int, float*, int64_t);
void dot_tile_q5_0(int64_t, const uint8_t*, uint64_t, int, const uint8_t*, uint64_t, int, float*, int64_t);
void dot_tile_q5_1(int64_t, const uint8_t*, uint64_t, int, const uint8_t*, uint64_t, int, float*, int64_t);
void dot_tile_q8_0(int64_t, const uint8_t*, uint64_t, int, const uint8_t*, uint64_t, int, float*, int64_t);
void dot_tile_q4_K(int64_t, const uint8_t*, uint64_t, int, const uint8_t*, uint64_t, int, float*, int64_t);
void dot_tile_q5_K(int64_t, const uint8_t*, uint64_t, int, const uint8_t*, uint64_t, int, float*, int64_t);
void dot_tile_q6_K(int64_t, const uint8_t*, uint64_t, int, const uint8_t*, uint64_t, int, float*, int64_t);
}  // namespace avx2

// AArch64 (qdot_neon.cpp): plain ARMv8-A quantizers and tiles; neon::dotprod
// (qdot_neon_dotprod.cpp): the tiles with SDOT, for CPUs with the dot-product extension. Both
// give the scalar reference's bits.
namespace neon {
void quantize_row_a8(const float* x, void* y, int64_t n);
void quantize_row_q8k_act(const float* x, void* y, int64_t n);
void dot_tile_q4_0(int64_t, const uint8_t*, uint64_t, int, const uint8_t*, uint64_t, int, float*, int64_t);
void dot_tile_q4_1(int64_t, const uint8_t*, uint64_t, int, const uint8_t*, uint64_t, int, float*, int64_t);
void dot_tile_q5_0(int64_t, const uint8_t*, uint64_t, int, const uint8_t*, uint64_t, int, float*, int64_t);
void dot_tile_q5_1(int64_t, const uint8_t*, uint64_t, int, const uint8_t*, uint64_t, int, float*, int64_t);
void dot_tile_q8_0(int64_t, const uint8_t*, uint64_t, int, const uint8_t*, uint64_t, int, float*, int64_t);
void dot_tile_q4_K(int64_t, const uint8_t*, uint64_t, int, const uint8_t*, uint64_t, int, float*, int64_t);
void dot_tile_q5_K(int64_t, const uint8_t*, uint64_t, int, const uint8_t*, uint64_t, int, float*, int64_t);
void dot_tile_q6_K(int64_t, const uint8_t*, uint64_t, int, const uint8_t*, uint64_t, int, float*, int64_t);
namespace dotprod {
void dot_tile_q4_0(int64_t, const uint8_t*, uint64_t, int, const uint8_t*, uint64_t, int, float*, int64_t);
void dot_tile_q4_1(int64_t, const uint8_t*, uint64_t, int, const uint8_t*, uint64_t, int, float*, int64_t);
void dot_tile_q5_0(int64_t, const uint8_t*, uint64_t, int, const uint8_t*, uint64_t, int, float*, int64_t);
void dot_tile_q5_1(int64_t, const uint8_t*, uint64_t, int, const uint8_t*, uint64_t, int, float*, int64_t);
void dot_tile_q8_0(int64_t, const uint8_t*, uint64_t, int, const uint8_t*, uint64_t, int, float*, int64_t);
void dot_tile_q4_K(int64_t, const uint8_t*, uint64_t, int, const uint8_t*, uint64_t, int, float*, int64_t);
void dot_tile_q5_K(int64_t, const uint8_t*, uint64_t, int, const uint8_t*, uint64_t, int, float*, int64_t);
void dot_tile_q6_K(int64_t, const uint8_t*, uint64_t, int, const uint8_t*, uint64_t, int, float*, int64_t);
}  // namespace dotprod
}  // namespace neon

}  // namespace ember
