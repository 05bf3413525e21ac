// qdot_neon_dotprod.cpp — the AArch64 integer dot-product tiles with SDOT (FEAT_DotProd: four
// int8 products summed into each int32 lane, one instruction per 16 bytes). Compiled with the
// dot-product extension enabled (CMakeLists.txt) and installed in the kernel table only when
// the CPU reports it (cpu_features().dotprod), so nothing here may run on other CPUs: the file
// holds only these tiles, and their templates (qdot_neon_tiles.h) have internal linkage.
// Same results as qdot_neon.cpp and the scalar reference, bit for bit.
#include <arm_neon.h>

#ifndef __ARM_FEATURE_DOTPROD
#error "qdot_neon_dotprod.cpp must be compiled with the dot-product extension (e.g. -march=armv8.2-a+dotprod)"
#endif

#include "quants/qdot_neon_tiles.h"

namespace ember::neon::dotprod {

namespace {

struct Sdot {
    static int32x4_t dot16(int8x16_t w, int8x16_t a) { return vdotq_s32(vdupq_n_s32(0), w, a); }
    static int32x4_t dot32(int8x16_t w0, int8x16_t w1, int8x16_t a0, int8x16_t a1) {
        return vdotq_s32(vdotq_s32(vdupq_n_s32(0), w0, a0), w1, a1);
    }
};

}  // namespace

void dot_tile_q4_0(int64_t n, const uint8_t* w, uint64_t ws, int nr, const uint8_t* a, uint64_t as, int nt, float* out,
                   int64_t ldo) {
    dispatch<Tile32<Q4_0, Sdot>>(n, w, ws, nr, a, as, nt, out, ldo);
}
void dot_tile_q4_1(int64_t n, const uint8_t* w, uint64_t ws, int nr, const uint8_t* a, uint64_t as, int nt, float* out,
                   int64_t ldo) {
    dispatch<Tile32<Q4_1, Sdot>>(n, w, ws, nr, a, as, nt, out, ldo);
}
void dot_tile_q5_0(int64_t n, const uint8_t* w, uint64_t ws, int nr, const uint8_t* a, uint64_t as, int nt, float* out,
                   int64_t ldo) {
    dispatch<Tile32<Q5_0, Sdot>>(n, w, ws, nr, a, as, nt, out, ldo);
}
void dot_tile_q5_1(int64_t n, const uint8_t* w, uint64_t ws, int nr, const uint8_t* a, uint64_t as, int nt, float* out,
                   int64_t ldo) {
    dispatch<Tile32<Q5_1, Sdot>>(n, w, ws, nr, a, as, nt, out, ldo);
}
void dot_tile_q8_0(int64_t n, const uint8_t* w, uint64_t ws, int nr, const uint8_t* a, uint64_t as, int nt, float* out,
                   int64_t ldo) {
    dispatch<Tile32<Q8_0, Sdot>>(n, w, ws, nr, a, as, nt, out, ldo);
}
void dot_tile_q4_K(int64_t n, const uint8_t* w, uint64_t ws, int nr, const uint8_t* a, uint64_t as, int nt, float* out,
                   int64_t ldo) {
    dispatch<TileQ45K<false, Sdot>>(n, w, ws, nr, a, as, nt, out, ldo);
}
void dot_tile_q5_K(int64_t n, const uint8_t* w, uint64_t ws, int nr, const uint8_t* a, uint64_t as, int nt, float* out,
                   int64_t ldo) {
    dispatch<TileQ45K<true, Sdot>>(n, w, ws, nr, a, as, nt, out, ldo);
}
void dot_tile_q6_K(int64_t n, const uint8_t* w, uint64_t ws, int nr, const uint8_t* a, uint64_t as, int nt, float* out,
                   int64_t ldo) {
    dispatch<TileQ6K<Sdot>>(n, w, ws, nr, a, as, nt, out, ldo);
}

}  // namespace ember::neon::dotprod
