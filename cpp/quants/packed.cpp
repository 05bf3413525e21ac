// packed.cpp — packing, unpacking and the scalar reference tiles over the packed layout (see
// packed.h). The reference rebuilds each row's ggml blocks and hands them to the unpacked
// reference (qdot_ref.cpp), so packed and unpacked scalar results are the same bits.
#include "quants/packed.h"

#include <cstring>
#include <vector>

#include "common.h"
#include "quants/blocks.h"
#include "quants/dispatch.h"
#include "quants/qdot.h"

namespace ember {

namespace {

// Where the fields of one ggml block of 32 live, and where they go in a packed block.
struct Geometry {
    int src_bytes;   // ggml block size
    int d_off, m_off, qh_off, qs_off;  // in the ggml block (-1: absent)
    int qs_len;      // 16 (nibbles) or 32 (bytes)
    // in the packed block:
    int p_m, p_qh, p_qs, p_bytes;
};

const Geometry* geometry(GGMLType t) {
    //                                    src  d  m  qh  qs  len  p_m p_qh p_qs bytes
    static const Geometry q4_0 = {18, 0, -1, -1, 2, 16, -1, -1, 16, 144};
    static const Geometry q4_1 = {20, 0, 2, -1, 4, 16, 16, -1, 32, 160};
    static const Geometry q5_0 = {22, 0, -1, 2, 6, 16, -1, 16, 48, 176};
    static const Geometry q5_1 = {24, 0, 2, 4, 8, 16, 16, 32, 64, 192};
    static const Geometry q8_0 = {34, 0, -1, -1, 2, 32, -1, -1, 16, 272};
    switch (t) {
        case GGMLType::Q4_0: return &q4_0;
        case GGMLType::Q4_1: return &q4_1;
        case GGMLType::Q5_0: return &q5_0;
        case GGMLType::Q5_1: return &q5_1;
        case GGMLType::Q8_0: return &q8_0;
        default: return nullptr;
    }
}

// The ggml block of row r (0..7) of a packed block.
void unpack_block(const Geometry& g, const uint8_t* p, int r, uint8_t* blk) {
    std::memcpy(blk + g.d_off, p + 2 * r, 2);
    if (g.m_off >= 0) std::memcpy(blk + g.m_off, p + g.p_m + 2 * r, 2);
    if (g.qh_off >= 0) std::memcpy(blk + g.qh_off, p + g.p_qh + 4 * r, 4);
    for (int c = 0; c < g.qs_len / 4; ++c) std::memcpy(blk + g.qs_off + 4 * c, p + g.p_qs + 32 * c + 4 * r, 4);
}

// Rebuild row r of a packed group as ggml blocks (the reference kernels' input).
void unpack_group_row(const Geometry& g, const uint8_t* group, int64_t nb, int r, uint8_t* row) {
    for (int64_t b = 0; b < nb; ++b) unpack_block(g, group + b * g.p_bytes, r, row + b * g.src_bytes);
}

}  // namespace

uint64_t packed_block_bytes(GGMLType t) {
    const Geometry* g = geometry(t);
    return g ? uint64_t(g->p_bytes) : 0;
}

uint64_t packed_size(GGMLType t, int64_t n_rows, int64_t ne0) {
    const Geometry* g = geometry(t);
    if (!g) return 0;
    const uint64_t groups = uint64_t((n_rows + kPackRows - 1) / kPackRows);
    return groups * uint64_t(ne0 / 32) * uint64_t(g->p_bytes);
}

void pack_rows(GGMLType t, const uint8_t* src, uint64_t row_bytes, int64_t n_rows, int64_t ne0, uint8_t* dst) {
    const Geometry* g = geometry(t);
    if (!g) fail<ArgumentError>("pack_rows: ", type_traits(t).name, " has no packed form");
    const int64_t nb = ne0 / 32, groups = (n_rows + kPackRows - 1) / kPackRows;
    for (int64_t gi = 0; gi < groups; ++gi) {
        for (int64_t b = 0; b < nb; ++b) {
            uint8_t* p = dst + (gi * nb + b) * g->p_bytes;
            std::memset(p, 0, size_t(g->p_bytes));  // padding rows: all zero (scale 0)
            for (int r = 0; r < kPackRows && gi * kPackRows + r < n_rows; ++r) {
                const uint8_t* blk = src + uint64_t(gi * kPackRows + r) * row_bytes + b * g->src_bytes;
                std::memcpy(p + 2 * r, blk + g->d_off, 2);
                if (g->m_off >= 0) std::memcpy(p + g->p_m + 2 * r, blk + g->m_off, 2);
                if (g->qh_off >= 0) std::memcpy(p + g->p_qh + 4 * r, blk + g->qh_off, 4);
                for (int c = 0; c < g->qs_len / 4; ++c) std::memcpy(p + g->p_qs + 32 * c + 4 * r, blk + g->qs_off + 4 * c, 4);
            }
        }
    }
}

void unpack_row(GGMLType t, const uint8_t* packed, int64_t ne0, int64_t row, float* y) {
    const Geometry* g = geometry(t);
    if (!g) fail<ArgumentError>("unpack_row: ", type_traits(t).name, " has no packed form");
    const int64_t nb = ne0 / 32;
    std::vector<uint8_t> native(size_t(nb * g->src_bytes));
    unpack_group_row(*g, packed + (row / kPackRows) * nb * g->p_bytes, nb, int(row % kPackRows), native.data());
    dequantize_rows(t, native.data(), y, 1, ne0, kernels(Isa::Scalar));
}

namespace ref {

namespace {

// Blocks [b0, b0 + nb) of each row rebuilt as ggml blocks and dotted by the file-layout
// reference; a partial range is added to what out holds.
template <GGMLType T, DotTileFn Dot>
void packed_tile(int64_t b0, int64_t nb, const uint8_t* group, const uint8_t* a, uint64_t as, int nt, float* out, int64_t ldo,
                 bool accumulate) {
    const Geometry& g = *geometry(T);
    std::vector<uint8_t> row(size_t(nb * g.src_bytes));
    float part[kPackCols];
    for (int r = 0; r < kPackRows; ++r) {
        for (int64_t b = 0; b < nb; ++b) unpack_block(g, group + (b0 + b) * g.p_bytes, r, row.data() + b * g.src_bytes);
        Dot(nb * 32, row.data(), uint64_t(nb * g.src_bytes), 1, a + b0 * sizeof(block_a8), as, nt, part, 1);
        for (int t = 0; t < nt; ++t) out[t * ldo + r] = accumulate ? out[t * ldo + r] + part[t] : part[t];
    }
}

}  // namespace

void packed_tile_q4_0(int64_t b0, int64_t nb, const uint8_t* g, const uint8_t* a, uint64_t as, int nt, float* out,
                      int64_t ldo, bool accumulate) {
    packed_tile<GGMLType::Q4_0, dot_tile_q4_0>(b0, nb, g, a, as, nt, out, ldo, accumulate);
}
void packed_tile_q4_1(int64_t b0, int64_t nb, const uint8_t* g, const uint8_t* a, uint64_t as, int nt, float* out,
                      int64_t ldo, bool accumulate) {
    packed_tile<GGMLType::Q4_1, dot_tile_q4_1>(b0, nb, g, a, as, nt, out, ldo, accumulate);
}
void packed_tile_q5_0(int64_t b0, int64_t nb, const uint8_t* g, const uint8_t* a, uint64_t as, int nt, float* out,
                      int64_t ldo, bool accumulate) {
    packed_tile<GGMLType::Q5_0, dot_tile_q5_0>(b0, nb, g, a, as, nt, out, ldo, accumulate);
}
void packed_tile_q5_1(int64_t b0, int64_t nb, const uint8_t* g, const uint8_t* a, uint64_t as, int nt, float* out,
                      int64_t ldo, bool accumulate) {
    packed_tile<GGMLType::Q5_1, dot_tile_q5_1>(b0, nb, g, a, as, nt, out, ldo, accumulate);
}
void packed_tile_q8_0(int64_t b0, int64_t nb, const uint8_t* g, const uint8_t* a, uint64_t as, int nt, float* out,
                      int64_t ldo, bool accumulate) {
    packed_tile<GGMLType::Q8_0, dot_tile_q8_0>(b0, nb, g, a, as, nt, out, ldo, accumulate);
}

}  // namespace ref
}  // namespace ember
