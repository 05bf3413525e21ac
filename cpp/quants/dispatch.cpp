// dispatch.cpp — builds the per-ISA kernel tables once, starting from the scalar reference and
// overriding the entries an ISA file provides.
#include "quants/dispatch.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "common.h"
#include "cpu_features.h"
#include "quants/ref.h"
#include "quants/simd.h"

namespace ember {

static void set(KernelTable& t, GGMLType type, DequantizeRowFn dq, QuantizeRowFn q) {
    if (dq) t.dequantize[uint32_t(type)] = dq;
    if (q) t.quantize[uint32_t(type)] = q;
}

static KernelTable scalar_table() {
    KernelTable t;
    t.isa = Isa::Scalar;
    using G = GGMLType;
    set(t, G::F32, ref::dequantize_row_f32, ref::quantize_row_f32);
    set(t, G::F16, ref::dequantize_row_f16, ref::quantize_row_f16);
    set(t, G::BF16, ref::dequantize_row_bf16, ref::quantize_row_bf16);
    set(t, G::F64, ref::dequantize_row_f64, nullptr);
    set(t, G::I8, ref::dequantize_row_i8, nullptr);
    set(t, G::I16, ref::dequantize_row_i16, nullptr);
    set(t, G::I32, ref::dequantize_row_i32, nullptr);
    set(t, G::I64, ref::dequantize_row_i64, nullptr);
    set(t, G::Q4_0, ref::dequantize_row_q4_0, ref::quantize_row_q4_0);
    set(t, G::Q4_1, ref::dequantize_row_q4_1, ref::quantize_row_q4_1);
    set(t, G::Q5_0, ref::dequantize_row_q5_0, ref::quantize_row_q5_0);
    set(t, G::Q5_1, ref::dequantize_row_q5_1, ref::quantize_row_q5_1);
    set(t, G::Q8_0, ref::dequantize_row_q8_0, ref::quantize_row_q8_0);
    set(t, G::Q8_1, ref::dequantize_row_q8_1, ref::quantize_row_q8_1);
    set(t, G::Q2_K, ref::dequantize_row_q2_K, nullptr);
    set(t, G::Q3_K, ref::dequantize_row_q3_K, nullptr);
    set(t, G::Q4_K, ref::dequantize_row_q4_K, ref::quantize_row_q4_K);
    set(t, G::Q5_K, ref::dequantize_row_q5_K, ref::quantize_row_q5_K);
    set(t, G::Q6_K, ref::dequantize_row_q6_K, ref::quantize_row_q6_K);
    set(t, G::Q8_K, ref::dequantize_row_q8_K, ref::quantize_row_q8_K);
    t.dot_f32 = ref::dot_f32;
    t.dot_f16 = ref::dot_f16;
    t.axpy_f32 = ref::axpy_f32;
    t.axpy_f16 = ref::axpy_f16;
    t.silu_mul = ref::silu_mul;
    t.gelu_tanh_mul = ref::gelu_tanh_mul;
    t.dot_tile[uint32_t(G::Q4_0)] = ref::dot_tile_q4_0;
    t.dot_tile[uint32_t(G::Q4_1)] = ref::dot_tile_q4_1;
    t.dot_tile[uint32_t(G::Q5_0)] = ref::dot_tile_q5_0;
    t.dot_tile[uint32_t(G::Q5_1)] = ref::dot_tile_q5_1;
    t.dot_tile[uint32_t(G::Q8_0)] = ref::dot_tile_q8_0;
    t.dot_tile[uint32_t(G::Q4_K)] = ref::dot_tile_q4_K;
    t.dot_tile[uint32_t(G::Q5_K)] = ref::dot_tile_q5_K;
    t.dot_tile[uint32_t(G::Q6_K)] = ref::dot_tile_q6_K;
    t.attend_batch = ref::attend_batch;
    t.quantize_act[size_t(ActFormat::A8)] = ref::quantize_row_a8;
    t.quantize_act[size_t(ActFormat::Q8K)] = ref::quantize_row_q8k_act;
    return t;
}

static KernelTable avx2_table() {
    KernelTable t = scalar_table();
    t.isa = Isa::AVX2;
#ifdef EMBER_HAVE_AVX2_FILE
    using G = GGMLType;
    set(t, G::F16, avx2::dequantize_row_f16, avx2::quantize_row_f16);
    set(t, G::BF16, avx2::dequantize_row_bf16, nullptr);
    set(t, G::Q4_0, avx2::dequantize_row_q4_0, nullptr);
    set(t, G::Q4_1, avx2::dequantize_row_q4_1, nullptr);
    set(t, G::Q8_0, avx2::dequantize_row_q8_0, nullptr);
    t.dot_f32 = avx2::dot_f32;
    t.dot_f16 = avx2::dot_f16;
    t.axpy_f32 = avx2::axpy_f32;
    t.axpy_f16 = avx2::axpy_f16;
    t.silu_mul = avx2::silu_mul;
    t.gelu_tanh_mul = avx2::gelu_tanh_mul;
    t.dot_tile[uint32_t(G::Q4_0)] = avx2::dot_tile_q4_0;
    t.dot_tile[uint32_t(G::Q4_1)] = avx2::dot_tile_q4_1;
    t.dot_tile[uint32_t(G::Q5_0)] = avx2::dot_tile_q5_0;
    t.dot_tile[uint32_t(G::Q5_1)] = avx2::dot_tile_q5_1;
    t.dot_tile[uint32_t(G::Q8_0)] = avx2::dot_tile_q8_0;
    t.dot_tile[uint32_t(G::Q4_K)] = avx2::dot_tile_q4_K;
    t.dot_tile[uint32_t(G::Q5_K)] = avx2::dot_tile_q5_K;
    t.dot_tile[uint32_t(G::Q6_K)] = avx2::dot_tile_q6_K;
    t.packed_tile[uint32_t(G::Q4_0)] = avx2::packed_tile_q4_0;
    t.packed_tile[uint32_t(G::Q4_1)] = avx2::packed_tile_q4_1;
    t.packed_tile[uint32_t(G::Q5_0)] = avx2::packed_tile_q5_0;
    t.packed_tile[uint32_t(G::Q5_1)] = avx2::packed_tile_q5_1;
    t.packed_tile[uint32_t(G::Q8_0)] = avx2::packed_tile_q8_0;
    t.packed_pair_tile[uint32_t(G::Q8_0)] = avx2::packed_pair_tile_q8_0;
    t.packed_tile[uint32_t(G::Q4_K)] = avx2::packed_tile_q4_K;
    t.packed_tile[uint32_t(G::Q6_K)] = avx2::packed_tile_q6_K;
    for (G g : {G::Q4_0, G::Q4_1, G::Q5_0, G::Q5_1, G::Q4_K}) {
        t.panel_decode[uint32_t(g)] = avx2::panel_decode(g);
        t.panel_tile[uint32_t(g)] = avx2::panel_tile(g);
        t.panel_pair_tile[uint32_t(g)] = avx2::panel_pair_tile(g);
        t.panel_min_tokens[uint32_t(g)] = avx2::panel_min_tokens(g);
    }
    t.float_tile[uint32_t(G::F16)] = avx2::float_tile_f16;
    t.float_tile[uint32_t(G::F32)] = avx2::float_tile_f32;
    t.attend_batch = avx2::attend_batch;
    t.quantize_act[size_t(ActFormat::A8)] = avx2::quantize_row_a8;
    t.quantize_act[size_t(ActFormat::Q8K)] = avx2::quantize_row_q8k_act;
#endif
    return t;
}

// AVX-512 (F, BW, VL, VNNI): the AVX2 table with the kernels that have a 512-bit form; their
// results are the AVX2 ones bit for bit, so a model reads the same on either.
static KernelTable avx512_table() {
    KernelTable t = avx2_table();
    t.isa = Isa::AVX512;
#ifdef EMBER_HAVE_AVX512_FILE
    using G = GGMLType;
    for (G g : {G::Q4_0, G::Q4_1, G::Q5_0, G::Q5_1}) {
        t.panel_pair_decode[uint32_t(g)] = avx512::panel_pair_decode(g);
        if (PanelPairTileFn f = avx512::panel_pair_tile(g)) t.panel_pair_tile[uint32_t(g)] = f;
        t.panel_quad_tile[uint32_t(g)] = avx512::panel_quad_tile(g);
    }
#endif
    return t;
}

static KernelTable neon_table() {
    KernelTable t = scalar_table();
    t.isa = Isa::NEON;
#ifdef EMBER_HAVE_NEON_FILE
    using G = GGMLType;
    set(t, G::F16, neon::dequantize_row_f16, neon::quantize_row_f16);
    set(t, G::BF16, neon::dequantize_row_bf16, nullptr);
    set(t, G::Q4_0, neon::dequantize_row_q4_0, nullptr);
    set(t, G::Q8_0, neon::dequantize_row_q8_0, nullptr);
    t.dot_f32 = neon::dot_f32;
    t.dot_f16 = neon::dot_f16;
    t.axpy_f32 = neon::axpy_f32;
    t.axpy_f16 = neon::axpy_f16;
    t.silu_mul = neon::silu_mul;
    t.gelu_tanh_mul = neon::gelu_tanh_mul;
    t.quantize_act[size_t(ActFormat::A8)] = neon::quantize_row_a8;
    t.quantize_act[size_t(ActFormat::Q8K)] = neon::quantize_row_q8k_act;
    // Integer tiles: SDOT where the CPU has it, else widening multiplies (same bits either way).
    // packed_tile / float_tile stay empty: NEON reads the file layout. attend_batch stays the
    // reference's loop over attend(), which runs on this table's dot and axpy kernels.
    if (cpu_features().dotprod) {
        t.dot_tile[uint32_t(G::Q4_0)] = neon::dotprod::dot_tile_q4_0;
        t.dot_tile[uint32_t(G::Q4_1)] = neon::dotprod::dot_tile_q4_1;
        t.dot_tile[uint32_t(G::Q5_0)] = neon::dotprod::dot_tile_q5_0;
        t.dot_tile[uint32_t(G::Q5_1)] = neon::dotprod::dot_tile_q5_1;
        t.dot_tile[uint32_t(G::Q8_0)] = neon::dotprod::dot_tile_q8_0;
        t.dot_tile[uint32_t(G::Q4_K)] = neon::dotprod::dot_tile_q4_K;
        t.dot_tile[uint32_t(G::Q5_K)] = neon::dotprod::dot_tile_q5_K;
        t.dot_tile[uint32_t(G::Q6_K)] = neon::dotprod::dot_tile_q6_K;
    } else {
        t.dot_tile[uint32_t(G::Q4_0)] = neon::dot_tile_q4_0;
        t.dot_tile[uint32_t(G::Q4_1)] = neon::dot_tile_q4_1;
        t.dot_tile[uint32_t(G::Q5_0)] = neon::dot_tile_q5_0;
        t.dot_tile[uint32_t(G::Q5_1)] = neon::dot_tile_q5_1;
        t.dot_tile[uint32_t(G::Q8_0)] = neon::dot_tile_q8_0;
        t.dot_tile[uint32_t(G::Q4_K)] = neon::dot_tile_q4_K;
        t.dot_tile[uint32_t(G::Q5_K)] = neon::dot_tile_q5_K;
        t.dot_tile[uint32_t(G::Q6_K)] = neon::dot_tile_q6_K;
    }
#endif
    return t;
}

bool isa_supported(Isa isa) {
    const CpuFeatures& f = cpu_features();
    switch (isa) {
        case Isa::Scalar: return true;
#ifdef EMBER_HAVE_AVX2_FILE
        case Isa::AVX2: return f.avx2 && f.fma && f.f16c;
#endif
#ifdef EMBER_HAVE_AVX512_FILE
        case Isa::AVX512: return f.avx512 && f.avx2 && f.fma && f.f16c;
#endif
#ifdef EMBER_HAVE_NEON_FILE
        case Isa::NEON: return f.neon;
#endif
        default: return false;
    }
}

const char* isa_name(Isa isa) {
    switch (isa) {
        case Isa::AVX2: return "avx2";
        case Isa::AVX512: return "avx512";
        case Isa::NEON: return "neon";
        default: return "scalar";
    }
}

Isa isa_from_name(const std::string& name) {
    for (Isa isa : {Isa::Scalar, Isa::AVX2, Isa::AVX512, Isa::NEON})
        if (name == isa_name(isa)) return isa;
    fail<ArgumentError>("unknown instruction set '", name, "' (expected scalar, avx2, avx512 or neon)");
}

static Isa detect_best() {
    if (const char* env = std::getenv("EMBER_ISA"); env && *env) {
        // An explicit request narrows the choice; one the CPU cannot run falls back to scalar.
        for (Isa isa : {Isa::Scalar, Isa::AVX2, Isa::AVX512, Isa::NEON})
            if (std::strcmp(env, isa_name(isa)) == 0) return isa_supported(isa) ? isa : Isa::Scalar;
    }
    if (isa_supported(Isa::AVX512)) return Isa::AVX512;
    if (isa_supported(Isa::AVX2)) return Isa::AVX2;
    if (isa_supported(Isa::NEON)) return Isa::NEON;
    return Isa::Scalar;
}

Isa best_isa() {
    static const Isa best = detect_best();
    return best;
}

const KernelTable& kernels(Isa isa) {
    static const KernelTable scalar = scalar_table(), avx2 = avx2_table(), avx512 = avx512_table(), neon = neon_table();
    if (!isa_supported(isa)) fail<ArgumentError>("instruction set '", isa_name(isa), "' is not available on this CPU/build");
    switch (isa) {
        case Isa::AVX2: return avx2;
        case Isa::AVX512: return avx512;
        case Isa::NEON: return neon;
        default: return scalar;
    }
}

bool can_dequantize(GGMLType type) { return kernels(Isa::Scalar).dequantize[uint32_t(type)] != nullptr; }
bool can_quantize(GGMLType type) { return kernels(Isa::Scalar).quantize[uint32_t(type)] != nullptr; }

static void check_geometry(GGMLType type, int64_t n_rows, int64_t n_per_row, const char* what) {
    const TypeTraits& tr = type_traits(type);
    if (n_rows < 0 || n_per_row <= 0) fail<ArgumentError>(what, " ", tr.name, ": bad shape (", n_rows, " rows of ", n_per_row, ")");
    if (n_per_row % tr.block_size != 0)
        fail<ArgumentError>(what, " ", tr.name, ": row length ", n_per_row, " is not a multiple of the block size ", tr.block_size);
}

// Block structs contain 2-byte (fp16) and, in Q8_K, 4-byte fields; a tensor inside a file may
// start at any offset the file's alignment allows, so a row that is not aligned for its block
// struct is copied to an aligned scratch row first.
static bool aligned_for(GGMLType type, const void* p) {
    const uintptr_t need = type == GGMLType::Q8_K ? 4 : 2;
    return (reinterpret_cast<uintptr_t>(p) & (need - 1)) == 0;
}

void dequantize_rows(GGMLType type, const void* src, float* dst, int64_t n_rows, int64_t n_per_row, const KernelTable& k) {
    check_geometry(type, n_rows, n_per_row, "dequantize");
    DequantizeRowFn fn = k.dequantize[uint32_t(type)];
    if (!fn) fail<ArgumentError>("dequantizing ", type_traits(type).name, " is not supported");
    const uint64_t rb = row_size(type, n_per_row);
    const uint8_t* s = static_cast<const uint8_t*>(src);
    std::vector<uint64_t> scratch;
    for (int64_t r = 0; r < n_rows; ++r) {
        const uint8_t* row = s + uint64_t(r) * rb;
        if (!aligned_for(type, row)) {
            scratch.resize((rb + 7) / 8);
            std::memcpy(scratch.data(), row, rb);
            row = reinterpret_cast<const uint8_t*>(scratch.data());
        }
        fn(row, dst + r * n_per_row, n_per_row);
    }
}

// Formats whose values or scales are stored as fp16 cannot represent magnitudes past 65504;
// F32 and BF16 take any finite value.
static float max_magnitude(GGMLType type) {
    return (type == GGMLType::F32 || type == GGMLType::BF16 || type == GGMLType::Q8_K) ? 3.4028235e38f : 65504.0f;
}

static void check_values(GGMLType type, const float* x, int64_t row, int64_t n) {
    const float limit = max_magnitude(type);
    for (int64_t j = 0; j < n; ++j) {
        if (!std::isfinite(x[j]))
            fail<ArgumentError>("quantize ", type_traits(type).name, ": non-finite value ", x[j], " at row ", row, ", column ", j);
        if (std::fabs(x[j]) > limit)
            fail<ArgumentError>("quantize ", type_traits(type).name, ": value ", x[j], " at row ", row, ", column ", j,
                                " exceeds the format's range (|x| <= ", limit, ")");
    }
}

void quantize_rows(GGMLType type, const float* src, void* dst, int64_t n_rows, int64_t n_per_row, const KernelTable& k) {
    check_geometry(type, n_rows, n_per_row, "quantize");
    QuantizeRowFn fn = k.quantize[uint32_t(type)];
    if (!fn) fail<ArgumentError>("quantizing to ", type_traits(type).name, " is not supported");
    const uint64_t rb = row_size(type, n_per_row);
    uint8_t* d = static_cast<uint8_t*>(dst);
    std::vector<uint64_t> scratch;
    for (int64_t r = 0; r < n_rows; ++r) {
        check_values(type, src + r * n_per_row, r, n_per_row);
        uint8_t* row = d + uint64_t(r) * rb;
        if (aligned_for(type, row)) {
            fn(src + r * n_per_row, row, n_per_row);
        } else {
            scratch.resize((rb + 7) / 8);
            fn(src + r * n_per_row, scratch.data(), n_per_row);
            std::memcpy(row, scratch.data(), rb);
        }
    }
}

}  // namespace ember
