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
#include "quants/ref.h"

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

// Q5_0/Q5_1 fifth bits. ggml's word has bit i for value i; a packed register of nibbles c
// (c = 0..3) holds values 4c + j (low nibbles) and 16 + 4c + j (high) in byte j of a row's lane.
// The packed word puts both of byte j's bits in byte j: bit c for value 4c + j, bit 4 + c for
// value 16 + 4c + j, so one shift and one mask move a whole register's fifth bits into place.
uint32_t qh_to_packed(uint32_t qh) {
    uint32_t out = 0;
    for (int j = 0; j < 4; ++j)
        for (int c = 0; c < 4; ++c) {
            out |= ((qh >> (4 * c + j)) & 1u) << (8 * j + c);
            out |= ((qh >> (16 + 4 * c + j)) & 1u) << (8 * j + 4 + c);
        }
    return out;
}

uint32_t qh_from_packed(uint32_t w) {
    uint32_t qh = 0;
    for (int j = 0; j < 4; ++j)
        for (int c = 0; c < 4; ++c) {
            qh |= ((w >> (8 * j + c)) & 1u) << (4 * c + j);
            qh |= ((w >> (8 * j + 4 + c)) & 1u) << (16 + 4 * c + j);
        }
    return qh;
}

// The ggml block of row r (0..7) of a packed block.
void unpack_block(const Geometry& g, const uint8_t* p, int r, uint8_t* blk) {
    std::memcpy(blk + g.d_off, p + 2 * r, 2);
    if (g.m_off >= 0) std::memcpy(blk + g.m_off, p + g.p_m + 2 * r, 2);
    if (g.qh_off >= 0) {
        uint32_t qh;
        std::memcpy(&qh, p + g.p_qh + 4 * r, 4);
        qh = qh_from_packed(qh);
        std::memcpy(blk + g.qh_off, &qh, 4);
    }
    for (int c = 0; c < g.qs_len / 4; ++c) std::memcpy(blk + g.qs_off + 4 * c, p + g.p_qs + 32 * c + 4 * r, 4);
}

// Rebuild row r of a packed group as ggml blocks (the reference kernels' input).
void unpack_group_row(const Geometry& g, const uint8_t* group, int64_t nb, int r, uint8_t* row) {
    for (int64_t b = 0; b < nb; ++b) unpack_block(g, group + b * g.p_bytes, r, row + b * g.src_bytes);
}

// ---------------------------------------------------------------- K-quants (super-blocks of 256)
// Q4_K: d[8], dmin[8] fp16; scales[8 sub-blocks][8 rows] and mins[8][8] as bytes (unpacked from
// 6 bits); qs as 32 registers: register 8j + c holds bytes 32j + 4c .. +3 of each row (low
// nibbles: sub-block 2j, high: 2j + 1).                                        1184 bytes
// Q6_K: d[8] fp16; scales[16][8] int8; the 6-bit values one per byte, 64 registers: register c
// holds values 4c .. 4c+3 of each row (sub-block c / 4).                       2192 bytes
constexpr int kQ4KBytes = 1184, kQ6KBytes = 2192;

void pack_q4_K(const uint8_t* blk, int r, uint8_t* p) {
    block_q4_K b;
    std::memcpy(&b, blk, sizeof b);
    std::memcpy(p + 2 * r, &b.d, 2);
    std::memcpy(p + 16 + 2 * r, &b.dmin, 2);
    for (int s = 0; s < 8; ++s) ref::unpack_scale_min_k4(s, b.scales, p + 32 + 8 * s + r, p + 96 + 8 * s + r);
    for (int reg = 0; reg < 32; ++reg) std::memcpy(p + 160 + 32 * reg + 4 * r, b.qs + 4 * reg, 4);
}

void unpack_q4_K(const uint8_t* p, int r, uint8_t* blk) {
    block_q4_K b;
    std::memcpy(&b.d, p + 2 * r, 2);
    std::memcpy(&b.dmin, p + 16 + 2 * r, 2);
    uint8_t sc[8], mn[8];
    for (int s = 0; s < 8; ++s) sc[s] = p[32 + 8 * s + r], mn[s] = p[96 + 8 * s + r];
    for (int j = 0; j < 4; ++j) {  // the inverse of unpack_scale_min_k4
        b.scales[j] = uint8_t(sc[j] | ((sc[j + 4] >> 4) << 6));
        b.scales[j + 4] = uint8_t(mn[j] | ((mn[j + 4] >> 4) << 6));
        b.scales[j + 8] = uint8_t((sc[j + 4] & 0x0F) | ((mn[j + 4] & 0x0F) << 4));
    }
    for (int reg = 0; reg < 32; ++reg) std::memcpy(b.qs + 4 * reg, p + 160 + 32 * reg + 4 * r, 4);
    std::memcpy(blk, &b, sizeof b);
}

// Value e of a Q6_K block (0..63): low 4 bits from ql, top 2 from qh (ggml's layout).
int q6_value(const block_q6_K& b, int e) {
    const int h = e / 128, k = (e % 128) / 32, l = e % 32;
    const int low = (b.ql[64 * h + 32 * (k % 2) + l] >> (4 * (k / 2))) & 0x0F;
    const int high = (b.qh[32 * h + l] >> (2 * k)) & 3;
    return low | (high << 4);
}

void pack_q6_K(const uint8_t* blk, int r, uint8_t* p) {
    block_q6_K b;
    std::memcpy(&b, blk, sizeof b);
    std::memcpy(p + 2 * r, &b.d, 2);
    for (int s = 0; s < 16; ++s) p[16 + 8 * s + r] = uint8_t(b.scales[s]);
    for (int e = 0; e < QK_K; ++e) p[144 + 32 * (e / 4) + 4 * r + e % 4] = uint8_t(q6_value(b, e));
}

void unpack_q6_K(const uint8_t* p, int r, uint8_t* blk) {
    block_q6_K b;
    std::memset(&b, 0, sizeof b);
    std::memcpy(&b.d, p + 2 * r, 2);
    for (int s = 0; s < 16; ++s) b.scales[s] = int8_t(p[16 + 8 * s + r]);
    for (int e = 0; e < QK_K; ++e) {
        const int q = p[144 + 32 * (e / 4) + 4 * r + e % 4];
        const int h = e / 128, k = (e % 128) / 32, l = e % 32;
        b.ql[64 * h + 32 * (k % 2) + l] |= uint8_t((q & 0x0F) << (4 * (k / 2)));
        b.qh[32 * h + l] |= uint8_t((q >> 4) << (2 * k));
    }
    std::memcpy(blk, &b, sizeof b);
}

struct KGeometry {
    int src_bytes, p_bytes;
    void (*pack)(const uint8_t*, int, uint8_t*);
    void (*unpack)(const uint8_t*, int, uint8_t*);
};

const KGeometry* kgeometry(GGMLType t) {
    static const KGeometry q4_K = {sizeof(block_q4_K), kQ4KBytes, pack_q4_K, unpack_q4_K};
    static const KGeometry q6_K = {sizeof(block_q6_K), kQ6KBytes, pack_q6_K, unpack_q6_K};
    return t == GGMLType::Q4_K ? &q4_K : t == GGMLType::Q6_K ? &q6_K : nullptr;
}

}  // namespace

uint64_t packed_block_bytes(GGMLType t) {
    if (const KGeometry* k = kgeometry(t)) return uint64_t(k->p_bytes / 8);  // per 32 values
    const Geometry* g = geometry(t);
    return g ? uint64_t(g->p_bytes) : 0;
}

uint64_t packed_size(GGMLType t, int64_t n_rows, int64_t ne0) {
    if (kgeometry(t)) return uint64_t((n_rows + kPackRows - 1) / kPackRows) * uint64_t(ne0 / 32) * packed_block_bytes(t);
    const Geometry* g = geometry(t);
    if (!g) return 0;
    const uint64_t groups = uint64_t((n_rows + kPackRows - 1) / kPackRows);
    return groups * uint64_t(ne0 / 32) * uint64_t(g->p_bytes);
}

void pack_rows(GGMLType t, const uint8_t* src, uint64_t row_bytes, int64_t n_rows, int64_t ne0, uint8_t* dst) {
    if (const KGeometry* k = kgeometry(t)) {
        const int64_t nsb = ne0 / QK_K, groups = (n_rows + kPackRows - 1) / kPackRows;
        std::memset(dst, 0, size_t(packed_size(t, n_rows, ne0)));
        for (int64_t gi = 0; gi < groups; ++gi)
            for (int64_t b = 0; b < nsb; ++b)
                for (int r = 0; r < kPackRows && gi * kPackRows + r < n_rows; ++r)
                    k->pack(src + uint64_t(gi * kPackRows + r) * row_bytes + b * k->src_bytes, r,
                            dst + (gi * nsb + b) * k->p_bytes);
        return;
    }
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
                if (g->qh_off >= 0) {
                    uint32_t qh;
                    std::memcpy(&qh, blk + g->qh_off, 4);
                    qh = qh_to_packed(qh);
                    std::memcpy(p + g->p_qh + 4 * r, &qh, 4);
                }
                for (int c = 0; c < g->qs_len / 4; ++c) std::memcpy(p + g->p_qs + 32 * c + 4 * r, blk + g->qs_off + 4 * c, 4);
            }
        }
    }
}

void unpack_row(GGMLType t, const uint8_t* packed, int64_t ne0, int64_t row, float* y) {
    if (const KGeometry* k = kgeometry(t)) {
        const int64_t nsb = ne0 / QK_K;
        std::vector<uint8_t> native(size_t(nsb * k->src_bytes));
        const uint8_t* group = packed + (row / kPackRows) * nsb * k->p_bytes;
        for (int64_t b = 0; b < nsb; ++b) k->unpack(group + b * k->p_bytes, int(row % kPackRows), native.data() + b * k->src_bytes);
        dequantize_rows(t, native.data(), y, 1, ne0, kernels(Isa::Scalar));
        return;
    }
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

template <GGMLType T, DotTileFn Dot>
void packed_tile_k(int64_t b0, int64_t nb, const uint8_t* group, const uint8_t* a, uint64_t as, int nt, float* out, int64_t ldo,
                   bool accumulate) {
    const KGeometry& k = *kgeometry(T);
    const int64_t sb0 = b0 / 8, nsb = nb / 8;
    std::vector<uint8_t> row(size_t(nsb * k.src_bytes));
    float part[kPackCols];
    for (int r = 0; r < kPackRows; ++r) {
        for (int64_t b = 0; b < nsb; ++b) k.unpack(group + (sb0 + b) * k.p_bytes, r, row.data() + b * k.src_bytes);
        Dot(nsb * QK_K, row.data(), uint64_t(nsb * k.src_bytes), 1, a + sb0 * sizeof(block_q8_K), as, nt, part, 1);
        for (int t = 0; t < nt; ++t) out[t * ldo + r] = accumulate ? out[t * ldo + r] + part[t] : part[t];
    }
}

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

void packed_tile_q4_K(int64_t b0, int64_t nb, const uint8_t* g, const uint8_t* a, uint64_t as, int nt, float* out,
                      int64_t ldo, bool accumulate) {
    packed_tile_k<GGMLType::Q4_K, dot_tile_q4_K>(b0, nb, g, a, as, nt, out, ldo, accumulate);
}
void packed_tile_q6_K(int64_t b0, int64_t nb, const uint8_t* g, const uint8_t* a, uint64_t as, int nt, float* out,
                      int64_t ldo, bool accumulate) {
    packed_tile_k<GGMLType::Q6_K, dot_tile_q6_K>(b0, nb, g, a, as, nt, out, ldo, accumulate);
}

}  // namespace ref
}  // namespace ember
