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

void pack_float_rows(GGMLType t, const uint8_t* src, uint64_t row_bytes, int64_t n_rows, int64_t ne0, uint8_t* dst) {
    const uint64_t e = elem_bytes(t);
    if (e == 0) fail<ArgumentError>("pack_float_rows: ", type_traits(t).name, " is not F16 or F32");
    const int64_t groups = (n_rows + 7) / 8;
    std::memset(dst, 0, size_t(packed_float_size(t, n_rows, ne0)));
    for (int64_t g = 0; g < groups; ++g) {
        uint8_t* out = dst + uint64_t(g) * uint64_t(ne0) * 8 * e;
        for (int r = 0; r < 8 && g * 8 + r < n_rows; ++r) {
            const uint8_t* row = src + uint64_t(g * 8 + r) * row_bytes;
            for (int64_t k = 0; k < ne0; ++k) std::memcpy(out + (uint64_t(k) * 8 + uint64_t(r)) * e, row + uint64_t(k) * e, e);
        }
    }
}

}  // namespace ember
