// cpu_features.h — what the running CPU can do, read once from CPUID (x86) or the build target (ARM).
// Only the dispatch point (cpp/quants/dispatch.cpp) consults this.
#pragma once

namespace ember {

struct CpuFeatures {
    bool avx2 = false;
    bool fma = false;
    bool f16c = false;
    bool neon = false;
};

const CpuFeatures& cpu_features();

}  // namespace ember
