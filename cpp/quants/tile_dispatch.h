// tile_dispatch.h — run a tile kernel compiled for each shape with the shape known only at run
// time: a table of K::run<...> instantiations indexed by the shape. Plain templates (no
// intrinsics), shared by every ISA's tile files; K is each file's own (internal) kernel type.
#pragma once

#include <array>
#include <cstdint>
#include <utility>

#include "quants/packed.h"
#include "quants/qdot.h"

namespace ember::tile_dispatch {

// File-layout tiles (qdot.h): K::run<rows, tokens>, rows <= kTileRows, tokens <= kTileCols.
using RowsColsTile = void (*)(int64_t, const uint8_t*, uint64_t, const uint8_t*, uint64_t, float*, int64_t);

template <class K, int... I>
constexpr std::array<RowsColsTile, sizeof...(I)> rows_cols_table(std::integer_sequence<int, I...>) {
    return {{&K::template run<I / kTileCols + 1, I % kTileCols + 1>...}};
}

template <class K>
void run_rows_cols(int64_t n, const uint8_t* w, uint64_t ws, int nr, const uint8_t* a, uint64_t as, int nt, float* out,
                   int64_t ldo) {
    static constexpr auto table = rows_cols_table<K>(std::make_integer_sequence<int, kTileRows * kTileCols>{});
    table[size_t((nr - 1) * kTileCols + (nt - 1))](n, w, ws, a, as, out, ldo);
}

// Packed-group tiles (packed.h, panel.h): K::run<tokens>, tokens <= kPackCols.
using ColsTile = void (*)(int64_t, int64_t, const uint8_t*, const uint8_t*, uint64_t, float*, int64_t, bool);

template <class K, int... I>
constexpr std::array<ColsTile, sizeof...(I)> cols_table(std::integer_sequence<int, I...>) {
    return {{&K::template run<I + 1>...}};
}

template <class K>
void run_cols(int64_t b0, int64_t nb, const uint8_t* w, const uint8_t* a, uint64_t as, int nt, float* out, int64_t ldo,
              bool accumulate) {
    static constexpr auto table = cols_table<K>(std::make_integer_sequence<int, kPackCols>{});
    table[size_t(nt - 1)](b0, nb, w, a, as, out, ldo, accumulate);
}

// Two-group tiles (packed.h, panel.h): K::run<tokens>, tokens <= kPackCols.
using PairColsTile = void (*)(int64_t, int64_t, const uint8_t*, const uint8_t*, const uint8_t*, uint64_t, float*, int64_t,
                              bool);

template <class K, int... I>
constexpr std::array<PairColsTile, sizeof...(I)> pair_cols_table(std::integer_sequence<int, I...>) {
    return {{&K::template run<I + 1>...}};
}

template <class K>
void run_pair_cols(int64_t b0, int64_t nb, const uint8_t* w0, const uint8_t* w1, const uint8_t* a, uint64_t as, int nt,
                   float* out, int64_t ldo, bool accumulate) {
    static constexpr auto table = pair_cols_table<K>(std::make_integer_sequence<int, kPackCols>{});
    table[size_t(nt - 1)](b0, nb, w0, w1, a, as, out, ldo, accumulate);
}

// Four-group tiles (panel.h): K::run<tokens>, tokens <= kPackCols.
using QuadColsTile = void (*)(int64_t, int64_t, const uint8_t* const*, const uint8_t*, uint64_t, float*, int64_t, bool);

template <class K, int... I>
constexpr std::array<QuadColsTile, sizeof...(I)> quad_cols_table(std::integer_sequence<int, I...>) {
    return {{&K::template run<I + 1>...}};
}

template <class K>
void run_quad_cols(int64_t b0, int64_t nb, const uint8_t* const* panels, const uint8_t* a, uint64_t as, int nt, float* out,
                   int64_t ldo, bool accumulate) {
    static constexpr auto table = quad_cols_table<K>(std::make_integer_sequence<int, kPackCols>{});
    table[size_t(nt - 1)](b0, nb, panels, a, as, out, ldo, accumulate);
}

}  // namespace ember::tile_dispatch
