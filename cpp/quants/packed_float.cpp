// packed_float.cpp — the float repacking (see packed_float.h).
#include "quants/packed_float.h"

#include <cstring>

#include "common.h"

namespace ember {

static uint64_t elem_bytes(GGMLType t) { return t == GGMLType::F16 ? 2 : t == GGMLType::F32 ? 4 : 0; }

uint64_t packed_float_size(GGMLType t, int64_t n_rows, int64_t ne0) {
    const uint64_t e = elem_bytes(t);
    return uint64_t((n_rows + 7) / 8) * uint64_t(ne0) * 8 * e;
}

template <class E>
static void interleave(const uint8_t* src, uint64_t row_bytes, int64_t n_rows, int64_t ne0, uint8_t* dst) {
    const int64_t groups = (n_rows + 7) / 8;
    for (int64_t g = 0; g < groups; ++g) {
        E* out = reinterpret_cast<E*>(dst) + uint64_t(g) * uint64_t(ne0) * 8;
        for (int r = 0; r < 8; ++r) {
            if (g * 8 + r >= n_rows) {  // padding rows
                for (int64_t k = 0; k < ne0; ++k) out[k * 8 + r] = E(0);
                continue;
            }
            const uint8_t* row = src + uint64_t(g * 8 + r) * row_bytes;
            for (int64_t k = 0; k < ne0; ++k) {
                E v;
                std::memcpy(&v, row + uint64_t(k) * sizeof(E), sizeof(E));  // file rows need not be aligned
                out[k * 8 + r] = v;
            }
        }
    }
}

void pack_float_rows(GGMLType t, const uint8_t* src, uint64_t row_bytes, int64_t n_rows, int64_t ne0, uint8_t* dst) {
    if (t == GGMLType::F16) interleave<uint16_t>(src, row_bytes, n_rows, ne0, dst);
    else if (t == GGMLType::F32) interleave<uint32_t>(src, row_bytes, n_rows, ne0, dst);
    else fail<ArgumentError>("pack_float_rows: ", type_traits(t).name, " is not F16 or F32");
}

}  // namespace ember
