// kernel_test.cpp — the SIMD kernel set of the running CPU (kernels(best_isa())) against the scalar
// reference (kernels(Isa::Scalar)), with no Python: it runs natively (AVX2 on x86-64) and
// cross-built under qemu (NEON on AArch64; tests/neon.sh). On random inputs of odd sizes, fixed
// seed:
//   - dot_f32 / dot_f16 / axpy_f32 / axpy_f16 / silu_mul / gelu_tanh_mul: within bounds derived
//     from float32 rounding (the reduction orders differ; see each check);
//   - the activation quantizers: the same bytes;
//   - every integer dot-product tile (nr, nt = 1..4, several row lengths and strides): within a
//     float-summation bound, exact where the ISA promises the reference's bits (NEON), and batch
//     invariant: an output equals, bit for bit, the same (row, activation) computed alone;
//   - every row dequantizer and quantizer that the ISA overrides: the same bits (NaNs as NaNs).
// On AArch64 with the dot-product extension the widening-multiply tiles (what CPUs without it
// get) are checked as a third table. One line per check; the exit status is 1 on any failure.
#include <cinttypes>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <random>
#include <string>
#include <vector>

#include "cpu_features.h"
#include "quants/blocks.h"
#include "quants/dispatch.h"
#include "quants/fp16.h"
#include "quants/qdot.h"

using namespace ember;

namespace {

constexpr double U = 1.0 / (1 << 24);  // float32 unit roundoff

int g_failures = 0, g_checks = 0;

void line(bool ok, const std::string& what, const std::string& detail) {
    ++g_checks;
    if (!ok) ++g_failures;
    std::printf("%s %-44s %s\n", ok ? "ok  " : "FAIL", what.c_str(), detail.c_str());
}

std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));
std::string fmt(const char* f, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, f);
    std::vsnprintf(buf, sizeof buf, f, ap);
    va_end(ap);
    return buf;
}

std::mt19937_64 rng(20261201);

float uniform(float lo, float hi) { return lo + (hi - lo) * float(double(rng() >> 11) * (1.0 / 9007199254740992.0)); }
float normal() {  // Box-Muller: enough for test data
    const double u1 = (double(rng() >> 11) + 1.0) * (1.0 / 9007199254740993.0), u2 = double(rng() >> 11) * (1.0 / 9007199254740992.0);
    return float(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
}
std::vector<float> normals(int64_t n, float scale = 1.0f) {
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = normal() * scale;
    return v;
}
std::vector<uint8_t> random_bytes(size_t n) {
    std::vector<uint8_t> v(n);
    for (uint8_t& b : v) b = uint8_t(rng());
    return v;
}

bool same_bits(float a, float b) { return std::memcmp(&a, &b, 4) == 0 || (std::isnan(a) && std::isnan(b)); }

// Worst |got - want| / bound over a check; a check passes when every ratio is <= 1.
struct Worst {
    double ratio = 0;
    int64_t at = -1, exact = 0, count = 0;
    float got = 0, want = 0;
    void add(int64_t i, float g, float w, double bound) {
        ++count;
        if (same_bits(g, w)) {
            ++exact;
            return;
        }
        const double r = std::isfinite(g) && std::isfinite(w) ? std::fabs(double(g) - double(w)) / bound : INFINITY;
        if (r > ratio || at < 0) ratio = r, at = i, got = g, want = w;
    }
    bool ok() const { return ratio <= 1.0; }
    std::string str() const {
        std::string s = fmt("%" PRId64 "/%" PRId64 " exact, worst err/bound %.3g", exact, count, ratio);
        if (at >= 0 && ratio > 0) s += fmt(" at %" PRId64 " (got %.9g, want %.9g)", at, double(got), double(want));
        return s;
    }
};

// ------------------------------------------------------------------ vector kernels
void check_dots(const KernelTable& k, const KernelTable& ref, const char* isa) {
    for (int64_t n : {1, 2, 3, 4, 5, 7, 8, 15, 16, 17, 31, 33, 63, 64, 100, 576, 4099}) {
        Worst w32, w16;
        for (int off = 0; off < 3; ++off) {  // misaligned starts too
            const std::vector<float> a = normals(n + 3), b = normals(n + 3);
            std::vector<uint16_t> h(size_t(n + 3));
            for (int64_t i = 0; i < n + 3; ++i) h[size_t(i)] = fp32_to_fp16(a[size_t(i)]);
            double mag32 = 0, mag16 = 0;
            for (int64_t i = off; i < off + n; ++i) {
                mag32 += std::fabs(double(a[size_t(i)]) * b[size_t(i)]);
                mag16 += std::fabs(double(fp16_to_fp32(h[size_t(i)])) * b[size_t(i)]);
            }
            // both orders are within (n + 2) u sum|a b| of the exact sum (test_ops.py's bound), so of each other within twice that
            w32.add(off, k.dot_f32(a.data() + off, b.data() + off, n), ref.dot_f32(a.data() + off, b.data() + off, n),
                    2 * (n + 2) * U * mag32 + 1e-30);
            w16.add(off, k.dot_f16(h.data() + off, b.data() + off, n), ref.dot_f16(h.data() + off, b.data() + off, n),
                    2 * (n + 2) * U * mag16 + 1e-30);
        }
        line(w32.ok(), fmt("%s dot_f32 n=%" PRId64, isa, n), w32.str());
        line(w16.ok(), fmt("%s dot_f16 n=%" PRId64, isa, n), w16.str());
    }
}

void check_axpy(const KernelTable& k, const KernelTable& ref, const char* isa) {
    for (int64_t n : {1, 3, 4, 5, 8, 17, 256, 1001}) {
        for (bool f16 : {false, true}) {
            Worst w;
            const std::vector<float> y0 = normals(n + 1), x = normals(n + 1);
            std::vector<uint16_t> h(size_t(n + 1));
            for (int64_t i = 0; i <= n; ++i) h[size_t(i)] = fp32_to_fp16(x[size_t(i)]);
            const float a = 0.37f;
            std::vector<float> y1 = y0, y2 = y0;
            if (f16) {
                k.axpy_f16(y1.data() + 1, h.data() + 1, a, n);
                ref.axpy_f16(y2.data() + 1, h.data() + 1, a, n);
            } else {
                k.axpy_f32(y1.data() + 1, x.data() + 1, a, n);
                ref.axpy_f32(y2.data() + 1, x.data() + 1, a, n);
            }
            for (int64_t i = 0; i <= n; ++i) {
                const double xs = f16 ? fp16_to_fp32(h[size_t(i)]) : x[size_t(i)];
                // one or two roundings (fused or not) of y + a x: each within 2u (|y| + |a x|)
                w.add(i, y1[size_t(i)], y2[size_t(i)], 4 * U * (std::fabs(y0[size_t(i)]) + std::fabs(a * xs)) + 1e-30);
            }
            line(w.ok() && y1[0] == y0[0], fmt("%s axpy_%s n=%" PRId64, isa, f16 ? "f16" : "f32", n), w.str());
        }
    }
}

void check_gated(const KernelTable& k, const KernelTable& ref, const char* isa) {
    for (int64_t n : {1, 3, 4, 7, 8, 100, 1537}) {
        std::vector<float> g = normals(n, 4.0f), u = normals(n);
        const float extremes[] = {-90.0f, 90.0f, 0.0f, -1e-3f, 30.0f, -30.0f, 1e-30f};
        for (int64_t i = 0; i < n && i < 7; ++i) g[size_t(i)] = extremes[i];
        for (int which = 0; which < 2; ++which) {
            std::vector<float> a = g, b = g;
            (which ? k.gelu_tanh_mul : k.silu_mul)(a.data(), u.data(), n);
            (which ? ref.gelu_tanh_mul : ref.silu_mul)(b.data(), u.data(), n);
            Worst w;
            // test_ops.py holds each within 4e-7 |gate x up| of float64: twice that between them
            for (int64_t i = 0; i < n; ++i) w.add(i, a[size_t(i)], b[size_t(i)], 8e-7 * std::fabs(double(g[size_t(i)]) * u[size_t(i)]) + 1e-30);
            line(w.ok(), fmt("%s %s n=%" PRId64, isa, which ? "gelu_tanh_mul" : "silu_mul", n), w.str());
        }
    }
}

// ------------------------------------------------------------------ activation quantizers
// Rows with: an all-zero block, ordinary scales, and a block whose maximum is exactly 127 (d = 1,
// 1/d = 1), holding ties x.5 that must round to even.
std::vector<float> activation_row(int64_t n, int64_t block, float scale) {
    std::vector<float> x = normals(n, scale);
    for (int64_t j = 0; j < block && j < n; ++j) x[size_t(j)] = 0.0f;
    if (n >= 2 * block) {
        float* t = x.data() + block;
        for (int64_t j = 0; j < block; ++j) t[j] = float(int(j % 9) - 4) + 0.5f;  // -3.5 .. 4.5
        t[3] = 127.0f;
        t[5] = -126.5f;
    }
    return x;
}

void check_quantize_act(const KernelTable& k, const KernelTable& ref, const char* isa) {
    for (ActFormat f : {ActFormat::A8, ActFormat::Q8K}) {
        const int64_t block = f == ActFormat::A8 ? 32 : QK_K;
        for (int64_t nb : {1, 3, 37}) {
            const int64_t n = nb * block;
            bool ok = true;
            std::string where = "same bytes";
            for (float scale : {1.0f, 1e-3f, 300.0f, 3e-7f}) {
                const std::vector<float> x = activation_row(n, block, scale);
                const uint64_t bytes = act_row_size(f, n);
                std::vector<uint8_t> a(bytes, 0xAA), b(bytes, 0x55);
                k.quantize_act[size_t(f)](x.data(), a.data(), n);
                ref.quantize_act[size_t(f)](x.data(), b.data(), n);
                if (ok && a != b) {
                    size_t i = 0;
                    while (a[i] == b[i]) ++i;
                    ok = false;
                    where = fmt("scale %g: first difference at byte %zu (block %zu): %02x vs %02x", double(scale), i,
                                i / (bytes / uint64_t(nb)), a[i], b[i]);
                }
            }
            line(ok, fmt("%s quantize_act %s n=%" PRId64, isa, f == ActFormat::A8 ? "a8" : "q8k", n), where);
        }
    }
}

// ------------------------------------------------------------------ integer tiles
const GGMLType kTileTypes[] = {GGMLType::Q4_0, GGMLType::Q4_1, GGMLType::Q5_0, GGMLType::Q5_1,
                               GGMLType::Q8_0, GGMLType::Q4_K, GGMLType::Q5_K, GGMLType::Q6_K};

void put_fp16(uint8_t* p, float v) {
    const uint16_t h = fp32_to_fp16(v);
    std::memcpy(p, &h, 2);
}

// Random blocks: every quant bit pattern, with sane fp16 scales (and minimums) so that the sums
// stay finite. Offsets of the fp16 fields per block, as blocks.h lays them out.
void random_weights(GGMLType t, uint8_t* row, int64_t n) {
    const TypeTraits& tr = type_traits(t);
    const std::vector<uint8_t> bytes = random_bytes(size_t(row_size(t, n)));
    std::memcpy(row, bytes.data(), bytes.size());
    for (int64_t i = 0; i < n / tr.block_size; ++i) {
        uint8_t* b = row + i * tr.type_size;
        const float d = uniform(0.002f, 0.05f) * (rng() & 1 ? 1.0f : -1.0f);
        switch (t) {
            case GGMLType::Q4_1: case GGMLType::Q5_1:
                put_fp16(b, std::fabs(d));
                put_fp16(b + 2, uniform(-0.5f, 0.1f));
                break;
            case GGMLType::Q4_K: case GGMLType::Q5_K:
                put_fp16(b, std::fabs(d) * 0.1f);
                put_fp16(b + 2, std::fabs(d) * 0.1f);
                break;
            case GGMLType::Q6_K: put_fp16(b + offsetof(block_q6_K, d), d * 0.1f); break;
            default: put_fp16(b, d); break;  // Q4_0, Q5_0, Q8_0: d first
        }
    }
}

// The values an activation row stands for: d * q per block.
std::vector<double> act_values(ActFormat f, const uint8_t* a, int64_t n) {
    std::vector<double> v(static_cast<size_t>(n));
    if (f == ActFormat::A8) {
        for (int64_t i = 0; i < n / 32; ++i) {
            block_a8 b;
            std::memcpy(&b, a + i * sizeof b, sizeof b);
            for (int j = 0; j < 32; ++j) v[size_t(32 * i + j)] = double(b.d) * b.qs[j];
        }
    } else {
        for (int64_t i = 0; i < n / QK_K; ++i) {
            block_q8_K b;
            std::memcpy(&b, a + i * sizeof b, sizeof b);
            for (int j = 0; j < QK_K; ++j) v[size_t(QK_K * i + j)] = double(b.d) * b.qs[j];
        }
    }
    return v;
}

struct TileSet {
    const char* name;
    const KernelTable* k;
    bool exact;  // promises the scalar reference's bits
};

void check_tiles(const TileSet& s, const KernelTable& ref) {
    constexpr int kRows = 5, kActs = 5;  // tiles at origins (0, 0) and (1, 1)
    for (GGMLType t : kTileTypes) {
        const TypeTraits& tr = type_traits(t);
        const ActFormat f = act_format(t);
        const DotTileFn fast = s.k->dot_tile[uint32_t(t)], slow = ref.dot_tile[uint32_t(t)];
        if (!fast) {
            line(true, fmt("%s dot_tile %s", s.name, tr.name), "no tile kernel (dequantized to float)");
            continue;
        }
        const int64_t bs = f == ActFormat::A8 ? 32 : QK_K;
        const std::vector<int64_t> lengths = bs == 32 ? std::vector<int64_t>{32, 96, 1184} : std::vector<int64_t>{256, 768, 1280};
        bool invariant = true;
        std::string inv_detail = "every output equals its 1x1 tile bit for bit";
        for (int64_t n : lengths) {
            const uint64_t rb = row_size(t, n), ab = act_row_size(f, n);
            // strides: packed rows, rows with a gap (2-byte aligned as in a file), activations with a gap
            const uint64_t wstrides[] = {rb, rb + 2, 2 * rb + 6}, astrides[] = {ab, ab + 8, ab + 4};
            for (int si = 0; si < 3; ++si) {
                const uint64_t ws = wstrides[si], as = astrides[si];
                std::vector<uint8_t> w(ws * kRows + 8), a(as * kActs + 8);
                for (int r = 0; r < kRows; ++r) random_weights(t, w.data() + r * ws, n);
                std::vector<std::vector<double>> wv(kRows), av(kActs);
                for (int r = 0; r < kRows; ++r) {
                    std::vector<float> tmp(static_cast<size_t>(n));
                    ref.dequantize[uint32_t(t)](w.data() + r * ws, tmp.data(), n);
                    wv[size_t(r)].assign(tmp.begin(), tmp.end());
                }
                for (int c = 0; c < kActs; ++c) {
                    const std::vector<float> x = normals(n, c == 3 ? 50.0f : 1.0f);
                    ref.quantize_act[size_t(f)](x.data(), a.data() + c * as, n);
                    av[size_t(c)] = act_values(f, a.data() + c * as, n);
                }
                // Bound: the integer sums are exact, so what rounds is a few float operations per
                // block (the scale product, the multiply-add, the running sums in their lanes,
                // the final lane and minimum sums): either order is within (blocks + 8) u of the
                // sum of the terms' magnitudes. The terms of a block (d*sc*sum q a, min*sum a)
                // are each at most 3 max|w| sum|a| over their (super-)block, so 4 max|w| sum|a|
                // covers both.
                double bound[kRows][kActs];
                for (int r = 0; r < kRows; ++r)
                    for (int c = 0; c < kActs; ++c) {
                        double mag = 0;
                        for (int64_t i = 0; i < n; i += bs) {
                            double mw = 0, sa = 0;
                            for (int64_t j = i; j < i + bs; ++j) mw = std::fmax(mw, std::fabs(wv[size_t(r)][size_t(j)]));
                            for (int64_t j = i; j < i + bs; ++j) sa += std::fabs(av[size_t(c)][size_t(j)]);
                            mag += 4 * mw * sa;
                        }
                        bound[r][c] = 2 * double(n / bs + 8) * U * mag + 1e-30;
                    }
                float want[kRows][kActs], alone[kRows][kActs];
                for (int r = 0; r < kRows; ++r)
                    for (int c = 0; c < kActs; ++c) {
                        slow(n, w.data() + r * ws, ws, 1, a.data() + c * as, as, 1, &want[r][c], 1);
                        fast(n, w.data() + r * ws, ws, 1, a.data() + c * as, as, 1, &alone[r][c], 1);
                    }
                Worst worst;
                for (int o = 0; o < 2; ++o)
                    for (int nr = 1; nr <= kTileRows; ++nr)
                        for (int nt = 1; nt <= kTileCols; ++nt) {
                            const int64_t ldo = nr + 3;  // outputs not packed
                            std::vector<float> out(size_t(ldo * nt), -12345.0f);
                            fast(n, w.data() + o * ws, ws, nr, a.data() + o * as, as, nt, out.data(), ldo);
                            for (int tt = 0; tt < nt; ++tt)
                                for (int rr = 0; rr < ldo; ++rr) {
                                    const float g = out[size_t(tt * ldo + rr)];
                                    if (rr >= nr) {  // must be left alone
                                        if (g != -12345.0f) invariant = false, inv_detail = "wrote outside its tile";
                                        continue;
                                    }
                                    const int r = o + rr, c = o + tt;
                                    worst.add(((o * 16 + nr * 4 + nt) * 16 + tt) * 16 + rr, g, want[r][c], bound[r][c]);
                                    if (!same_bits(g, alone[r][c]) && invariant) {
                                        invariant = false;
                                        inv_detail = fmt("n=%" PRId64 " row %d act %d in a %dx%d tile: %.9g, alone %.9g", n, r, c, nr,
                                                         nt, double(g), double(alone[r][c]));
                                    }
                                }
                        }
                const bool ok = worst.ok() && (!s.exact || worst.exact == worst.count);
                line(ok, fmt("%s dot_tile %s n=%" PRId64 " ws=%+d as=%+d", s.name, tr.name, n, int(ws - rb), int(as - ab)),
                     worst.str() + (s.exact ? " (exact required)" : ""));
            }
        }
        line(invariant, fmt("%s dot_tile %s batch invariance", s.name, tr.name), inv_detail);
    }
}

// ------------------------------------------------------------------ row (de)quantizers
void check_rows(const KernelTable& k, const KernelTable& ref, const char* isa) {
    int same = 0;
    for (uint32_t id = 0; id < kMaxTypeId; ++id) {
        const TypeTraits* tr = type_traits(id);
        if (!tr || !k.dequantize[id] || !ref.dequantize[id]) continue;
        if (k.dequantize[id] == ref.dequantize[id]) {
            ++same;
            continue;
        }
        bool ok = true;
        std::string detail = "same bits (NaN as NaN)";
        for (int64_t nb : {1, 3, 37}) {
            // ragged lengths for the element types, whole blocks for the others
            const int64_t n = tr->block_size == 1 ? nb * 8 + 3 : nb * tr->block_size;
            const std::vector<uint8_t> x = random_bytes(size_t(row_size(tr->type, n)));  // every bit pattern, fp16 fields too
            std::vector<float> a(static_cast<size_t>(n)), b(static_cast<size_t>(n));
            k.dequantize[id](x.data(), a.data(), n);
            ref.dequantize[id](x.data(), b.data(), n);
            for (int64_t i = 0; i < n && ok; ++i)
                if (!same_bits(a[size_t(i)], b[size_t(i)]))
                    ok = false, detail = fmt("n=%" PRId64 " value %" PRId64 ": %.9g vs %.9g", n, i, double(a[size_t(i)]), double(b[size_t(i)]));
        }
        line(ok, fmt("%s dequantize %s", isa, tr->name), detail);
    }
    for (uint32_t id = 0; id < kMaxTypeId; ++id) {
        const TypeTraits* tr = type_traits(id);
        if (!tr || !k.quantize[id] || !ref.quantize[id]) continue;
        if (k.quantize[id] == ref.quantize[id]) {
            ++same;
            continue;
        }
        bool ok = true;
        std::string detail = "same bytes";
        for (int64_t nb : {1, 3, 37}) {
            const int64_t n = tr->block_size == 1 ? nb * 8 + 3 : nb * tr->block_size;
            std::vector<float> x = normals(n, 10.0f);
            // finite values across the fp16 range: subnormals, ties, near overflow
            const float edge[] = {1e-7f, -3e-8f, 6.1e-5f, 65504.0f, -65519.0f, 65520.0f, 1.00048828125f, 2049.0f, 0.0f, -0.0f};
            for (int64_t i = 0; i < n && i < 10; ++i) x[size_t(i)] = edge[i];
            std::vector<uint8_t> a(size_t(row_size(tr->type, n))), b(a.size());
            k.quantize[id](x.data(), a.data(), n);
            ref.quantize[id](x.data(), b.data(), n);
            if (ok && a != b) ok = false, detail = fmt("n=%" PRId64 ": bytes differ", n);
        }
        line(ok, fmt("%s quantize %s", isa, tr->name), detail);
    }
    line(true, fmt("%s row kernels shared with scalar", isa), fmt("%d (nothing to compare)", same));
}

}  // namespace

int main() {
    const Isa best = best_isa();
    const KernelTable& k = kernels(best);
    const KernelTable& ref = kernels(Isa::Scalar);
    const CpuFeatures& cf = cpu_features();
    std::printf("kernel_test: %s vs scalar (avx2 %d fma %d f16c %d neon %d dotprod %d)\n", isa_name(best), cf.avx2, cf.fma,
                cf.f16c, cf.neon, cf.dotprod);
    const char* name = isa_name(best);
    if (best == Isa::Scalar) std::printf("note: the scalar table against itself (no SIMD set on this CPU, or EMBER_ISA=scalar)\n");
    check_dots(k, ref, name);
    check_axpy(k, ref, name);
    check_gated(k, ref, name);
    check_quantize_act(k, ref, name);
    check_rows(k, ref, name);
    // NEON tiles reproduce the reference exactly, by construction (quants/qdot_neon_tiles.h).
    std::vector<TileSet> sets = {{best == Isa::NEON && cf.dotprod ? "neon(sdot)" : name, &k, best == Isa::NEON || best == Isa::Scalar}};
#if defined(EMBER_HAVE_NEON_FILE)
    KernelTable widening = k;  // what a CPU without the dot-product extension runs
    if (best == Isa::NEON && cf.dotprod) {
        const GGMLType* t = kTileTypes;
        const DotTileFn fns[] = {neon::dot_tile_q4_0, neon::dot_tile_q4_1, neon::dot_tile_q5_0, neon::dot_tile_q5_1,
                                 neon::dot_tile_q8_0, neon::dot_tile_q4_K, neon::dot_tile_q5_K, neon::dot_tile_q6_K};
        for (int i = 0; i < 8; ++i) widening.dot_tile[uint32_t(t[i])] = fns[i];
        sets.push_back({"neon(widening)", &widening, true});
    } else if (best == Isa::NEON) {
        sets[0].name = "neon(widening)";
    }
#endif
    for (const TileSet& s : sets) check_tiles(s, ref);
    std::printf("kernel_test: %d checks, %d failed\n", g_checks, g_failures);
    return g_failures ? 1 : 0;
}
