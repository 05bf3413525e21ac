// norm.h — RMSNorm and softmax over one row.
#pragma once

#include <cstdint>

namespace ember {

// y = x / sqrt(mean(x^2) + eps) * w   (w may be nullptr: no scale). y may alias x.
// The mean of squares is accumulated in double: a row of thousands of values then rounds once.
void rms_norm(const float* x, const float* w, int64_t n, float eps, float* y);

// x = softmax(x) in place, with the maximum subtracted first; returns nothing for n == 0.
void softmax(float* x, int64_t n);

}  // namespace ember
