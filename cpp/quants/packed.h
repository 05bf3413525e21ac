// packed.h — weight matrices repacked at load for the integer kernels: 8 rows interleaved.
//
// A packed matrix is a sequence of row groups (8 rows; the last group padded with zero rows),
// each a sequence of packed blocks, one per 32 values of the row length. A packed block holds
// the 8 rows' fp16 scales side by side (and minimums or fifth bits), then their quants
// interleaved 4 bytes at a time: bytes 32c .. 32c+31 are bytes 4c .. 4c+3 of each row's quants
// in turn. One 32-byte load then gives the same 4 (or, with nibbles, 2 x 4) consecutive values of
// all 8 rows, and one multiply-add with 4 activation bytes broadcast leaves each row's sum in
// its own 32-bit lane: no horizontal sums, one scale vector for 8 rows, one pass over memory in
// address order (the layout is the kernel's reading order).
//
// Sizes equal the source's (fp16 scales stay fp16), so a packed model costs no more bandwidth.
// Formats (per block of 8 rows x 32 values):
//   Q4_0: d[8] fp16, qs[128]                        144 bytes
//   Q4_1: d[8], m[8] fp16, qs[128]                  160
//   Q5_0: d[8] fp16, qh[8] u32 (bits reordered), qs[128]  176
//   Q5_1: d[8], m[8] fp16, qh[8] u32 (reordered), qs[128]  192
//   Q8_0: d[8] fp16, qs[256]                        272
// and per 8 rows x 256 values (activations in Q8K blocks; block ranges in multiples of 8):
//   Q4_K: d[8], dmin[8] fp16, 6-bit scales and mins unpacked to bytes, qs[1024]   1184 (file: 1152)
//   Q6_K: d[8] fp16, scales int8[128], the 6-bit values one per byte [2048]        2192 (file: 1680)
// A tile kernel computes out[t * ldo + r] for the group's 8 rows r and nt <= 4 tokens t from
// activations in A8 blocks; each output is the same sequence of operations for any nt.
#pragma once

#include <cstdint>

#include "quants/types.h"

namespace ember {

constexpr int kPackRows = 8;
constexpr int kPackCols = 4;  // tokens per tile

// Bytes of one packed block (8 rows x 32 values); 0 when the type has no packed form.
uint64_t packed_block_bytes(GGMLType t);
// Bytes of a packed n_rows x ne0 matrix (0 when the type has no packed form).
uint64_t packed_size(GGMLType t, int64_t n_rows, int64_t ne0);
// Repack rows (src: n_rows rows of row_bytes in the ggml layout) into dst (packed_size bytes).
void pack_rows(GGMLType t, const uint8_t* src, uint64_t row_bytes, int64_t n_rows, int64_t ne0, uint8_t* dst);
// One row back out of a packed matrix, as float (for tests and for embedding lookups).
void unpack_row(GGMLType t, const uint8_t* packed, int64_t ne0, int64_t row, float* y);

// out[t * ldo + r] (+)= blocks [b0, b0 + nb) of row r of the group . the same blocks of activation
// row t, for r < 8 and t < nt <= kPackCols: `accumulate` adds to what out holds (the sum over
// earlier blocks), else starts from zero. Splitting a row into block ranges this way leaves
// every output the same sequence of operations, so it changes no bits; the matmul uses it to
// keep a slice of the weights in L1 while many tokens pass.
using PackedTileFn = void (*)(int64_t b0, int64_t nb, const uint8_t* group, const uint8_t* a, uint64_t a_stride, int nt,
                              float* out, int64_t ldo, bool accumulate);

// Two adjacent full groups at once (16 rows; group1 is the group after group0): out[t * ldo + r]
// for r < 16, each output the single-group tile's operations (the same bits). Where the
// integer sums use few registers, one activation broadcast then feeds two groups' weights.
using PackedPairTileFn = void (*)(int64_t b0, int64_t nb, const uint8_t* group0, const uint8_t* group1, const uint8_t* a,
                                  uint64_t a_stride, int nt, float* out, int64_t ldo, bool accumulate);

namespace ref {
// The file-layout reference on rebuilt ggml rows (whole rows: the same bits as that reference).
void packed_tile_q4_0(int64_t b0, int64_t nb, const uint8_t* group, const uint8_t* a, uint64_t as, int nt, float* out,
                      int64_t ldo, bool accumulate);
void packed_tile_q4_1(int64_t b0, int64_t nb, const uint8_t* group, const uint8_t* a, uint64_t as, int nt, float* out,
                      int64_t ldo, bool accumulate);
void packed_tile_q5_0(int64_t b0, int64_t nb, const uint8_t* group, const uint8_t* a, uint64_t as, int nt, float* out,
                      int64_t ldo, bool accumulate);
void packed_tile_q5_1(int64_t b0, int64_t nb, const uint8_t* group, const uint8_t* a, uint64_t as, int nt, float* out,
                      int64_t ldo, bool accumulate);
void packed_tile_q8_0(int64_t b0, int64_t nb, const uint8_t* group, const uint8_t* a, uint64_t as, int nt, float* out,
                      int64_t ldo, bool accumulate);
void packed_tile_q4_K(int64_t b0, int64_t nb, const uint8_t* group, const uint8_t* a, uint64_t as, int nt, float* out,
                      int64_t ldo, bool accumulate);
void packed_tile_q6_K(int64_t b0, int64_t nb, const uint8_t* group, const uint8_t* a, uint64_t as, int nt, float* out,
                      int64_t ldo, bool accumulate);
}  // namespace ref

namespace avx2 {
void packed_tile_q4_0(int64_t b0, int64_t nb, const uint8_t* group, const uint8_t* a, uint64_t as, int nt, float* out,
                      int64_t ldo, bool accumulate);
void packed_tile_q4_1(int64_t b0, int64_t nb, const uint8_t* group, const uint8_t* a, uint64_t as, int nt, float* out,
                      int64_t ldo, bool accumulate);
void packed_tile_q5_0(int64_t b0, int64_t nb, const uint8_t* group, const uint8_t* a, uint64_t as, int nt, float* out,
                      int64_t ldo, bool accumulate);
void packed_tile_q5_1(int64_t b0, int64_t nb, const uint8_t* group, const uint8_t* a, uint64_t as, int nt, float* out,
                      int64_t ldo, bool accumulate);
void packed_tile_q8_0(int64_t b0, int64_t nb, const uint8_t* group, const uint8_t* a, uint64_t as, int nt, float* out,
                      int64_t ldo, bool accumulate);
void packed_tile_q4_K(int64_t b0, int64_t nb, const uint8_t* group, const uint8_t* a, uint64_t as, int nt, float* out,
                      int64_t ldo, bool accumulate);
void packed_tile_q6_K(int64_t b0, int64_t nb, const uint8_t* group, const uint8_t* a, uint64_t as, int nt, float* out,
                      int64_t ldo, bool accumulate);
void packed_pair_tile_q8_0(int64_t b0, int64_t nb, const uint8_t* group0, const uint8_t* group1, const uint8_t* a,
                           uint64_t as, int nt, float* out, int64_t ldo, bool accumulate);
}  // namespace avx2

}  // namespace ember
