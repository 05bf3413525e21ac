// matmul.cpp — see matmul.h.
#include "ops/matmul.h"

#include <algorithm>

#include "common.h"
#include "quants/packed.h"
#include "quants/packed_float.h"
#include "quants/panel.h"
#include "threadpool.h"

namespace ember {

// Tokens per block of the integer path: 64 activation rows of a few thousand values stay in L2
// while a thread's weight rows stream through them.
static constexpr int64_t kTokenBlock = 64;

MatmulScratch::MatmulScratch(int n_threads, int64_t max_row_length, int64_t max_tokens)
    : per_thread_(size_t(max_row_length * kRowsPerChunk)),
      buf_(size_t(n_threads) * per_thread_),
      max_tokens_(max_tokens),
      max_row_(max_row_length) {
    const int64_t row32 = max_row_length / 32 * 32, row256 = max_row_length / 256 * 256;
    act_[size_t(ActFormat::A8)].resize(size_t(act_row_size(ActFormat::A8, row32) * uint64_t(max_tokens)));
    act_[size_t(ActFormat::Q8K)].resize(size_t(act_row_size(ActFormat::Q8K, row256) * uint64_t(max_tokens)));
}

// Rows [r0, r1) of one matrix against every token, in float.
static void float_rows(const MatmulOut& o, int64_t r0, int64_t r1, const float* x, int64_t ldx, int64_t n_tokens,
                       float* scratch, const KernelTable& k) {
    const TensorView& w = *o.w;
    const int64_t n = w.ne0;
    if (w.type == GGMLType::F32 || w.type == GGMLType::F16) {
        for (int64_t r = r0; r < r1; ++r) {
            const uint8_t* row = w.row(r);
            for (int64_t t = 0; t < n_tokens; ++t)
                o.y[t * o.ldy + r] = w.type == GGMLType::F32 ? k.dot_f32(reinterpret_cast<const float*>(row), x + t * ldx, n)
                                                             : k.dot_f16(reinterpret_cast<const uint16_t*>(row), x + t * ldx, n);
        }
        return;
    }
    const DequantizeRowFn dequantize = k.dequantize[uint32_t(w.type)];
    for (int64_t c0 = r0; c0 < r1; c0 += MatmulScratch::kRowsPerChunk) {
        const int64_t c1 = std::min(r1, c0 + MatmulScratch::kRowsPerChunk);
        for (int64_t r = c0; r < c1; ++r) dequantize(w.row(r), scratch + (r - c0) * n, n);
        for (int64_t t = 0; t < n_tokens; ++t) {
            const float* xt = x + t * ldx;
            for (int64_t r = c0; r < c1; ++r) o.y[t * o.ldy + r] = k.dot_f32(scratch + (r - c0) * n, xt, n);
        }
    }
}

// Rows [r0, r1) of one matrix against every token, by integer tiles.
static void integer_rows(const MatmulOut& o, int64_t r0, int64_t r1, const uint8_t* act, uint64_t act_stride,
                         int64_t n_tokens, const KernelTable& k) {
    const TensorView& w = *o.w;
    const DotTileFn tile = k.dot_tile[uint32_t(w.type)];
    for (int64_t t0 = 0; t0 < n_tokens; t0 += kTokenBlock) {
        const int64_t t1 = std::min(n_tokens, t0 + kTokenBlock);
        for (int64_t r = r0; r < r1; r += kTileRows) {
            const int nr = int(std::min<int64_t>(kTileRows, r1 - r));
            // The tile reads its rows as four interleaved streams, which the hardware prefetcher
            // follows poorly; fetch the next tile's rows (one contiguous span) ahead of time.
            if (r + kTileRows < r1) {
                const uint8_t* next = w.row(r + kTileRows);
                const uint64_t span = uint64_t(std::min<int64_t>(kTileRows, r1 - r - kTileRows)) * w.row_bytes;
                for (uint64_t off = 0; off < span; off += 64) __builtin_prefetch(next + off);
            }
            for (int64_t t = t0; t < t1; t += kTileCols) {
                const int nt = int(std::min<int64_t>(kTileCols, t1 - t));
                tile(w.ne0, w.row(r), w.row_bytes, nr, act + uint64_t(t) * act_stride, act_stride, nt, o.y + t * o.ldy + r, o.ldy);
            }
        }
    }
}

// Row groups [g0, g1) of a packed matrix against every token, by packed tiles (8 rows each).
// With more tokens than one tile, a group's row is taken kPackSlice blocks at a time (its slice
// of weights stays in L1 while the token block's tiles pass), the outputs accumulating in y,
// and two full groups go together where the type has a pair tile (quants/packed.h, panel.h).
static constexpr int64_t kPackTokenBlock = 32, kPackSlice = 16;
static_assert(kPackSlice <= kPanelMaxBlocks, "a slice must fit a panel");

static void packed_rows(const MatmulOut& o, int64_t g0, int64_t g1, const uint8_t* act, uint64_t act_stride,
                        int64_t n_tokens, const KernelTable& k) {
    const TensorView& w = *o.w;
    const PackedTileFn tile = k.packed_tile[uint32_t(w.type)];
    const int64_t nb = w.ne0 / 32;
    const uint64_t block_bytes = packed_block_bytes(w.type), group_bytes = uint64_t(nb) * block_bytes;
    const int64_t slice = n_tokens > kPackCols ? kPackSlice : nb;
    const PanelDecodeFn decode = k.panel_decode[uint32_t(w.type)];
    const PanelTileFn panel_tile = k.panel_tile[uint32_t(w.type)];
    const PanelPairTileFn panel_pair = k.panel_pair_tile[uint32_t(w.type)];
    const PanelQuadTileFn panel_quad = k.panel_quad_tile[uint32_t(w.type)];
    const PanelPairDecodeFn pair_decode = k.panel_pair_decode[uint32_t(w.type)];
    const PackedPairTileFn packed_pair = k.packed_pair_tile[uint32_t(w.type)];
    const int64_t full = w.n_rows / kPackRows;  // groups without padding rows
    alignas(64) uint8_t panel[4][kPanelBytes];  // (contiguous: panel[i] and panel[i + 1] hold a pair panel)
    float partial[kPackTokenBlock * kPackRows];  // the last group of a matrix whose rows are not a multiple of 8
    for (int64_t t0 = 0; t0 < n_tokens; t0 += kPackTokenBlock) {
        const int64_t t1 = std::min(n_tokens, t0 + kPackTokenBlock);
        // a slice that passes enough tiles is decoded once (the same bits either way)
        const bool use_panel = decode && t1 - t0 >= k.panel_min_tokens[uint32_t(w.type)];
        const bool batch = t1 - t0 > kPackCols;
        for (int64_t g = g0; g < g1;) {
            const uint8_t* group = w.packed + uint64_t(g) * group_bytes;
            const int64_t r = g * kPackRows, nr = std::min<int64_t>(kPackRows, w.n_rows - r);
            // four or two full groups at once where the type has such tiles (batches only)
            const int64_t full_end = std::min(g1, full);
            const int ng = use_panel && panel_quad && g + 4 <= full_end ? 4
                           : g + 2 <= full_end && (use_panel ? panel_pair != nullptr : packed_pair && batch) ? 2 : 1;
            if (ng > 1) {
                for (int64_t b0 = 0; b0 < nb; b0 += slice) {
                    const int64_t nbs = std::min(slice, nb - b0);
                    if (use_panel && pair_decode)  // pair panels in panel[0..1] and panel[2..3]
                        for (int i = 0; i < ng; i += 2)
                            pair_decode(b0, nbs, group + uint64_t(i) * group_bytes, group + uint64_t(i + 1) * group_bytes, panel[i]);
                    else if (use_panel)
                        for (int i = 0; i < ng; ++i) decode(b0, nbs, group + uint64_t(i) * group_bytes, panel[i]);
                    // the groups' next slice (or the next groups' first) streams in while the tiles run:
                    // with a batch of decoding tokens the weights come from memory once per step
                    const bool last = b0 + slice >= nb;
                    if (!last || g + ng < g1) {
                        const uint8_t* next = last ? group + uint64_t(ng) * group_bytes : group + uint64_t(b0 + slice) * block_bytes;
                        const uint64_t span = uint64_t(std::min(slice, last ? nb : nb - b0 - slice)) * block_bytes;
                        const int64_t n_next = last ? std::min<int64_t>(ng, g1 - g - ng) : ng;
                        for (int64_t i = 0; i < n_next; ++i)
                            for (uint64_t off = 0; off < span; off += 64) __builtin_prefetch(next + uint64_t(i) * group_bytes + off);
                    }
                    // and the rest of the next groups goes to L2 now (locality 2: prefetcht1): a decoding
                    // batch's tiles take less time than a slice takes to come from memory (~4% at 16
                    // sequences on a Zen 5, measured)
                    if (b0 == 0 && g + ng < g1) {
                        const uint8_t* after = group + uint64_t(ng) * group_bytes;
                        const uint64_t bytes = uint64_t(std::min<int64_t>(ng, g1 - g - ng)) * group_bytes;
                        for (uint64_t off = uint64_t(slice) * block_bytes; off < bytes; off += 64) __builtin_prefetch(after + off, 0, 2);
                    }
                    const uint8_t* panels[4] = {panel[0], panel[1], panel[2], panel[3]};
                    const uint8_t* pair_panels[2] = {panel[0], panel[2]};
                    for (int64_t t = t0; t < t1; t += kPackCols) {
                        const int nt = int(std::min<int64_t>(kPackCols, t1 - t));
                        const uint8_t* a = act + uint64_t(t) * act_stride;
                        float* out = o.y + t * o.ldy + r;
                        if (ng == 4) panel_quad(b0, nbs, pair_decode ? pair_panels : panels, a, act_stride, nt, out, o.ldy, b0 > 0);
                        else if (use_panel) panel_pair(b0, nbs, panel[0], panel[1], a, act_stride, nt, out, o.ldy, b0 > 0);
                        else packed_pair(b0, nbs, group, group + group_bytes, a, act_stride, nt, out, o.ldy, b0 > 0);
                    }
                }
                g += ng;
                continue;
            }
            for (int64_t b0 = 0; b0 < nb; b0 += slice) {
                const int64_t nbs = std::min(slice, nb - b0);
                if (use_panel) decode(b0, nbs, group, panel[0]);
                for (int64_t t = t0; t < t1; t += kPackCols) {
                    const int nt = int(std::min<int64_t>(kPackCols, t1 - t));
                    const uint8_t* a = act + uint64_t(t) * act_stride;
                    float* out = nr == kPackRows ? o.y + t * o.ldy + r : partial + (t - t0) * kPackRows;
                    const int64_t ldo = nr == kPackRows ? o.ldy : kPackRows;
                    if (use_panel) panel_tile(b0, nbs, panel[0], a, act_stride, nt, out, ldo, b0 > 0);
                    else tile(b0, nbs, group, a, act_stride, nt, out, ldo, b0 > 0);
                }
            }
            if (nr < kPackRows)
                for (int64_t t = t0; t < t1; ++t)
                    for (int64_t i = 0; i < nr; ++i) o.y[t * o.ldy + r + i] = partial[(t - t0) * kPackRows + i];
            ++g;
        }
    }
}

// Row groups [g0, g1) of a float matrix repacked 8 rows per value (quants/packed_float.h): one
// token takes 4 groups at once over the whole row; a batch, 2 groups x 6 tokens over slices of
// the row that stay in L1, the outputs accumulating in y.
static constexpr int64_t kFloatTokenBlock = 48, kFloatSlice = 256;

static void float_packed_rows(const MatmulOut& o, int64_t g0, int64_t g1, const float* x, int64_t ldx, int64_t n_tokens,
                              const KernelTable& k) {
    const TensorView& w = *o.w;
    const FloatTileFn tile = k.float_tile[uint32_t(w.type)];
    const uint64_t gb = uint64_t(w.ne0) * kPackRows * (w.type == GGMLType::F16 ? 2 : 4);
    const bool one = n_tokens == 1;
    const int64_t gstep = one ? kFloatTileGroups : 2, tstep = one ? 1 : kFloatTileCols, slice = one ? w.ne0 : kFloatSlice;
    const int64_t full = w.n_rows / kPackRows;  // groups without padding rows
    float partial[kFloatTokenBlock * kPackRows];
    for (int64_t t0 = 0; t0 < n_tokens; t0 += kFloatTokenBlock) {
        const int64_t t1 = std::min(n_tokens, t0 + kFloatTokenBlock);
        for (int64_t g = g0; g < g1;) {
            const bool pad = g >= full;  // the last group, part padding: computed alone into `partial`
            const int ng = pad ? 1 : int(std::min(gstep, std::min(g1, full) - g));
            for (int64_t k0 = 0; k0 < w.ne0; k0 += slice) {
                const int64_t nk = std::min(slice, w.ne0 - k0);
                for (int64_t t = t0; t < t1; t += tstep) {
                    const int nt = int(std::min(tstep, t1 - t));
                    float* out = pad ? partial + (t - t0) * kPackRows : o.y + t * o.ldy + g * kPackRows;
                    tile(k0, nk, w.packed + uint64_t(g) * gb, gb, ng, x + t * ldx, ldx, nt, out, pad ? kPackRows : o.ldy, k0 > 0);
                }
            }
            if (pad)
                for (int64_t t = t0; t < t1; ++t)
                    for (int64_t i = 0; i < w.n_rows - g * kPackRows; ++i)
                        o.y[t * o.ldy + g * kPackRows + i] = partial[(t - t0) * kPackRows + i];
            g += ng;
        }
    }
}

static bool is_packed(const TensorView& w, const KernelTable& k) {
    return w.packed && k.packed_tile[uint32_t(w.type)];
}

void matmul(const MatmulOut* outs, int n_outs, const float* x, int64_t ldx, int64_t n_tokens, ThreadPool& pool,
            MatmulScratch& scratch, const KernelTable& k) {
    // Quantize the activations once for every format these matrices need.
    bool need[3] = {false, false, false};
    int64_t units = 0, n = outs[0].w->ne0;
    for (int i = 0; i < n_outs; ++i) {
        units += (outs[i].w->n_rows + kPackRows - 1) / kPackRows;
        if (k.dot_tile[uint32_t(outs[i].w->type)] || is_packed(*outs[i].w, k)) need[size_t(act_format(outs[i].w->type))] = true;
        if (outs[i].w->ne0 != n) fail<ArgumentError>("matmul: matrices sharing an input must have one row length");
    }
    if (n_tokens > scratch.max_tokens() || n > scratch.max_row_length())
        fail<ArgumentError>("matmul: ", n_tokens, " x ", n, " exceeds the scratch (", scratch.max_tokens(), " x ",
                            scratch.max_row_length(), ")");
    for (ActFormat f : {ActFormat::A8, ActFormat::Q8K}) {
        if (!need[size_t(f)]) continue;
        const QuantizeActFn quantize = k.quantize_act[size_t(f)];
        const uint64_t stride = act_row_size(f, n);
        uint8_t* dst = scratch.act(f);
        pool.parallel_guided(n_tokens, 4, [&](int64_t t0, int64_t t1, int) {
            for (int64_t t = t0; t < t1; ++t) quantize(x + t * ldx, dst + uint64_t(t) * stride, n);
        });
    }
    // The work is cut in units of 8 rows (a packed row group), concatenated over the matrices,
    // and handed out a pair tile's or a quad tile's groups at a time (they stay together) in
    // guided pieces.
    bool quad = false;
    for (int i = 0; i < n_outs; ++i) {
        const uint32_t t = uint32_t(outs[i].w->type);
        quad = quad || (is_packed(*outs[i].w, k) && k.panel_quad_tile[t] && n_tokens >= k.panel_min_tokens[t]);
    }
    const int64_t step = quad ? 4 : 2;
    const int64_t chunks = (units + step - 1) / step;
    pool.parallel_guided(chunks, 1, [&](int64_t c0, int64_t c1, int thread) {
        const int64_t begin = step * c0, end = std::min(units, step * c1);
        int64_t offset = 0;
        for (int i = 0; i < n_outs && begin < end; ++i) {
            const MatmulOut& o = outs[i];
            const int64_t groups = (o.w->n_rows + kPackRows - 1) / kPackRows;
            const int64_t g0 = std::max(begin, offset) - offset, g1 = std::min(end, offset + groups) - offset;
            offset += groups;
            if (g0 >= g1) continue;
            const ActFormat f = act_format(o.w->type);
            const int64_t r0 = g0 * kPackRows, r1 = std::min(o.w->n_rows, g1 * kPackRows);
            if (is_packed(*o.w, k)) packed_rows(o, g0, g1, scratch.act(f), act_row_size(f, n), n_tokens, k);
            else if (o.w->packed && k.float_tile[uint32_t(o.w->type)]) float_packed_rows(o, g0, g1, x, ldx, n_tokens, k);
            else if (k.dot_tile[uint32_t(o.w->type)]) integer_rows(o, r0, r1, scratch.act(f), act_row_size(f, n), n_tokens, k);
            else float_rows(o, r0, r1, x, ldx, n_tokens, scratch.thread(thread), k);
        }
    });
}

}  // namespace ember
