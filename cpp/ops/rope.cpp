// rope.cpp — see rope.h.
#include "ops/rope.h"

#include <algorithm>
#include <cmath>

namespace ember {

// The dimension at which the wavelength spans n_rot rotations over the training context
// (YaRN's correction range is between the dims for beta_fast and beta_slow rotations).
static double yarn_corr_dim(int32_t n_dims, int32_t n_ctx_orig, double n_rot, double base) {
    return n_dims * std::log(n_ctx_orig / (n_rot * 2 * M_PI)) / (2 * std::log(base));
}

void rope_cos_sin(const RopeParams& p, const float* freq_factors, int32_t pos, float* cs) {
    const int32_t half = p.n_dims / 2;
    const double base = p.freq_base;
    double low = 0, high = 0, mscale = p.attn_factor;
    const bool yarn = p.scaling == RopeScaling::YaRN && p.ext_factor != 0.0f;
    if (yarn) {
        low = std::max(0.0, std::floor(yarn_corr_dim(p.n_dims, p.n_ctx_orig, p.beta_fast, base)));
        high = std::min(double(p.n_dims - 1), std::ceil(yarn_corr_dim(p.n_dims, p.n_ctx_orig, p.beta_slow, base)));
        mscale *= 1.0 + 0.1 * std::log(1.0 / p.freq_scale);
    }
    const double scale = p.scaling == RopeScaling::None ? 1.0 : p.freq_scale;
    for (int32_t i = 0; i < half; ++i) {
        double theta_extrap = double(pos) * std::pow(base, -2.0 * i / p.n_dims);
        if (freq_factors) theta_extrap /= freq_factors[i];
        double theta = theta_extrap * scale;
        if (yarn) {
            // ramp 1 below `low` (keep the original frequency), 0 above `high` (interpolate)
            const double y = (i - low) / std::max(0.001, high - low);
            const double ramp = (1.0 - std::min(1.0, std::max(0.0, y))) * p.ext_factor;
            theta = theta * (1.0 - ramp) + theta_extrap * ramp;
        }
        cs[2 * i] = float(std::cos(theta) * mscale);
        cs[2 * i + 1] = float(std::sin(theta) * mscale);
    }
}

void rope_apply(float* x, int32_t n_heads, int32_t head_dim, int32_t n_dims, RopeStyle style, const float* cs) {
    const int32_t half = n_dims / 2;
    for (int32_t h = 0; h < n_heads; ++h) {
        float* v = x + int64_t(h) * head_dim;
        for (int32_t i = 0; i < half; ++i) {
            const int32_t a = style == RopeStyle::Normal ? 2 * i : i;
            const int32_t b = style == RopeStyle::Normal ? 2 * i + 1 : i + half;
            const float c = cs[2 * i], s = cs[2 * i + 1];
            const float x0 = v[a], x1 = v[b];
            v[a] = x0 * c - x1 * s;
            v[b] = x0 * s + x1 * c;
        }
    }
}

}  // namespace ember
