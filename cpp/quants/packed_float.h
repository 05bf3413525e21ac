// packed_float.h — F16 and F32 weight matrices repacked at load for the float kernels: 8 rows
// interleaved per value (for value k of the row, the group's 8 rows' values side by side: 16
// bytes in F16, 32 in F32; the last group padded with zero rows).
//
// A tile keeps the rows in the lanes: per value k, one load gives the 8 rows' weights, and each
// token's x[k], broadcast, takes one fused multiply-add per group. An output is then the sum of
// w[k] x[k] in the order of k, whatever the tile's shape (1 to 4 groups x 1 to 6 tokens), so a
// token gives the same bits alone or in a batch; there is no horizontal sum to do.
#pragma once

#include <cstdint>

#include "quants/types.h"

namespace ember {

constexpr int kFloatTileGroups = 4, kFloatTileCols = 6;

// Bytes of the packed matrix; 0 unless t is F16 or F32.
uint64_t packed_float_size(GGMLType t, int64_t n_rows, int64_t ne0);
void pack_float_rows(GGMLType t, const uint8_t* src, uint64_t row_bytes, int64_t n_rows, int64_t ne0, uint8_t* dst);

// out[t * ldo + 8g + r] (+)= sum over k in [k0, k0 + nk) of group g's row r at k times x[t * ldx + k],
// for g < ng <= kFloatTileGroups (groups group_bytes apart) and t < nt <= kFloatTileCols.
using FloatTileFn = void (*)(int64_t k0, int64_t nk, const uint8_t* groups, uint64_t group_bytes, int ng, const float* x,
                             int64_t ldx, int nt, float* out, int64_t ldo, bool accumulate);

namespace avx2 {
void float_tile_f16(int64_t k0, int64_t nk, const uint8_t* groups, uint64_t group_bytes, int ng, const float* x, int64_t ldx,
                    int nt, float* out, int64_t ldo, bool accumulate);
void float_tile_f32(int64_t k0, int64_t nk, const uint8_t* groups, uint64_t group_bytes, int ng, const float* x, int64_t ldx,
                    int nt, float* out, int64_t ldo, bool accumulate);
}  // namespace avx2

}  // namespace ember
