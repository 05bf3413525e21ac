// panel.h — a slice of a packed row group decoded once for a batch of tokens.
//
// A packed tile (packed.h) unpacks its weights (nibbles, fifth bits) for every tile of up to 4
// tokens. With a batch (prefill, batched decode) the same slice passes 8 or more tiles, so the
// matmul decodes it once into a panel — every value one byte, in the order the tile multiplies
// it, the scales and minimum terms already float — and the panel tiles spend nothing but the
// multiply-adds. A panel tile gives the packed tile's bits exactly (the integer sums are exact,
// the float steps are the same), so the choice depends on the batch and changes no output.
//
// Panel layouts (AVX2, whose panels the AVX-512 tiles read too; the lanes of every vector are
// the group's 8 rows):
//   Q4_0/Q4_1/Q5_0/Q5_1, per block of 32 values (kPanelBlockBytes):
//     d[8] f32, m[8] f32 (the block's minimum term per unit of activation sum), q[8][32] u8:
//     vector j holds values 4j .. 4j+3 of each row (0..15 or 0..31).
//   Q4_K, per superblock of 256 values (kPanelSuperBytes):
//     d[8], dmin[8] f32; sc[8], mn[8]: each sub-block's scale and minimum per row in both 16-bit
//     halves of its lane (madd's multiplier); q[4][2][8][32] u8: chunk j of 64 values, low then
//     high nibbles (sub-blocks 2j, 2j+1), vector c holding values 4c .. 4c+3 of the sub-block.
#pragma once

#include <cstdint>

#include "quants/types.h"

namespace ember {

constexpr int64_t kPanelMaxBlocks = 16;  // blocks of 32 values a panel holds (a matmul slice)
constexpr uint64_t kPanelBlockBytes = 64 + 256, kPanelSuperBytes = 64 + 512 + 2048;
constexpr uint64_t kPanelBytes = kPanelMaxBlocks / 8 * kPanelSuperBytes;  // the larger of the two per slice
static_assert(kPanelBytes >= kPanelMaxBlocks * kPanelBlockBytes, "panel size");

// A pair panel: two adjacent groups decoded together, per block (kPairPanelBlockBytes): d[16],
// m[16] f32 (the first group's 8 rows, then the second's), then vector j of both groups side by
// side (64 bytes). Where a table has a pair decode for a type, its pair and quad tiles read pair
// panels (the first pointer of each pair); else one panel per group.
constexpr uint64_t kPairPanelBlockBytes = 2 * kPanelBlockBytes;
static_assert(2 * kPanelBytes >= kPanelMaxBlocks * kPairPanelBlockBytes, "pair panel size");

// Decode blocks [b0, b0 + nb) of a packed group (nb <= kPanelMaxBlocks; K-quants: multiples of 8)
// into panel (kPanelBytes, 32-byte aligned).
using PanelDecodeFn = void (*)(int64_t b0, int64_t nb, const uint8_t* group, uint8_t* panel);
// The same blocks of group0 and group1 (the group after it) into one pair panel (2 x kPanelBytes).
using PanelPairDecodeFn = void (*)(int64_t b0, int64_t nb, const uint8_t* group0, const uint8_t* group1, uint8_t* panel);
// As PackedTileFn over the blocks [b0, b0 + nb) a panel holds: the same bits.
using PanelTileFn = void (*)(int64_t b0, int64_t nb, const uint8_t* panel, const uint8_t* a, uint64_t a_stride, int nt,
                             float* out, int64_t ldo, bool accumulate);

// Two adjacent full groups at once (16 rows): panel0 holds rows 0..7 of the pair, panel1 rows
// 8..15, and out[t * ldo + r] for r < 16. Each activation broadcast then feeds two registers of
// weights. On Zen3 a broadcast from memory competes with the multiply-adds for the same pipes
// (measured), and one group's tile spends one per multiply-add: pairs ran Q4_0 ~1.28x and Q4_K
// ~1.4x faster (16 and 512 tokens). Every output is the single-group tile's sequence of operations: the same bits.
using PanelPairTileFn = void (*)(int64_t b0, int64_t nb, const uint8_t* panel0, const uint8_t* panel1, const uint8_t* a,
                                 uint64_t a_stride, int nt, float* out, int64_t ldo, bool accumulate);

// Four adjacent full groups at once (32 rows; panels[g] holds group g's slice), out[t * ldo + r]
// for r < 32: the single-group tile's operations per output, the same bits.
using PanelQuadTileFn = void (*)(int64_t b0, int64_t nb, const uint8_t* const* panels, const uint8_t* a,
                                 uint64_t a_stride, int nt, float* out, int64_t ldo, bool accumulate);

namespace avx2 {
// nullptr where a type has no panel: Q6_K (its packed tile reads bytes as they are) and Q8_0
// (all a decode could save is one sign per register, and every split measured slower)
PanelDecodeFn panel_decode(GGMLType t);
PanelTileFn panel_tile(GGMLType t);
PanelPairTileFn panel_pair_tile(GGMLType t);  // nullptr: groups one at a time
// Tokens from which a panel pays: two tiles (with one group at a time, Q4_0/Q4_1 batches of 16
// had run ~5% slower through a panel than through the packed tile; two groups at once win).
int32_t panel_min_tokens(GGMLType t);
}  // namespace avx2

namespace avx512 {
// AVX-512 VNNI pair and quad tiles, and the four-bit formats' pair-panel decode (the AVX2
// bits); nullptr where the type keeps the AVX2 kernel.
PanelPairDecodeFn panel_pair_decode(GGMLType t);
PanelPairTileFn panel_pair_tile(GGMLType t);
PanelQuadTileFn panel_quad_tile(GGMLType t);
}  // namespace avx512

}  // namespace ember
