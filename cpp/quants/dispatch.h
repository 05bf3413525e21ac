// dispatch.h — the one place that picks a kernel per type and per instruction set.
//
// A KernelTable holds, for every ggml type id, the row dequantizer and row quantizer (nullptr
// where the format has none), and the vector kernels of the forward pass (ops/vec.h).
// kernels(Isa::Scalar) is the reference; best_isa() is the fastest set this CPU runs, unless
// EMBER_ISA=scalar|avx2|avx512|neon in the environment narrows it.
#pragma once

#include <cstdint>
#include <string>

#include "ops/attention.h"
#include "ops/vec.h"
#include "quants/packed.h"
#include "quants/packed_float.h"
#include "quants/panel.h"
#include "quants/qdot.h"
#include "quants/types.h"

namespace ember {

using DequantizeRowFn = void (*)(const void* x, float* y, int64_t n);
using QuantizeRowFn = void (*)(const float* x, void* y, int64_t n);

enum class Isa { Scalar, AVX2, AVX512, NEON };

struct KernelTable {
    Isa isa;
    DequantizeRowFn dequantize[kMaxTypeId] = {};
    QuantizeRowFn quantize[kMaxTypeId] = {};
    DotF32Fn dot_f32 = nullptr;
    DotF16Fn dot_f16 = nullptr;
    AxpyF32Fn axpy_f32 = nullptr;
    AxpyF16Fn axpy_f16 = nullptr;
    GatedFn silu_mul = nullptr, gelu_tanh_mul = nullptr;
    // Integer dot products (quants/qdot.h): per weight type its tile kernel (nullptr: the type
    // is dequantized to float instead), and per activation format its quantizer.
    DotTileFn dot_tile[kMaxTypeId] = {};
    QuantizeActFn quantize_act[3] = {};  // indexed by ActFormat
    // Tiles over weights repacked at load (quants/packed.h); nullptr: this ISA reads the file's
    // layout. The scalar table has none: packing only pays with SIMD.
    PackedTileFn packed_tile[kMaxTypeId] = {};
    PackedPairTileFn packed_pair_tile[kMaxTypeId] = {};  // two groups at once for batches; nullptr: one
    // Batches decode a slice of packed weights once (quants/panel.h); nullptr: the packed tile.
    PanelDecodeFn panel_decode[kMaxTypeId] = {};
    PanelPairDecodeFn panel_pair_decode[kMaxTypeId] = {};  // two groups into a pair panel; nullptr: one by one
    PanelTileFn panel_tile[kMaxTypeId] = {};
    PanelPairTileFn panel_pair_tile[kMaxTypeId] = {};  // two groups at once; nullptr: one at a time
    PanelQuadTileFn panel_quad_tile[kMaxTypeId] = {};  // four groups at once; nullptr: pairs
    int32_t panel_min_tokens[kMaxTypeId] = {};  // the token blocks a panel pays for
    FloatTileFn float_tile[kMaxTypeId] = {};  // F16 / F32 weights repacked (quants/packed_float.h)
    AttendBatchFn attend_batch = nullptr;  // ops/attention.h
};

bool isa_supported(Isa isa);
Isa best_isa();
const char* isa_name(Isa isa);
Isa isa_from_name(const std::string& name);  // throws ArgumentError
const KernelTable& kernels(Isa isa);          // throws ArgumentError when the CPU lacks it
inline const KernelTable& kernels() { return kernels(best_isa()); }

// Whole-array helpers with argument checks (n_per_row a multiple of the block size, known type).
// src/dst may have any alignment: rows are staged through an aligned buffer when needed.
void dequantize_rows(GGMLType type, const void* src, float* dst, int64_t n_rows, int64_t n_per_row,
                     const KernelTable& k = kernels());
void quantize_rows(GGMLType type, const float* src, void* dst, int64_t n_rows, int64_t n_per_row,
                   const KernelTable& k = kernels());

bool can_dequantize(GGMLType type);
bool can_quantize(GGMLType type);

}  // namespace ember
