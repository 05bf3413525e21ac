// cpu_features.h — what the running CPU can do, read once from CPUID (x86) or the kernel's hardware
// capability bits (AArch64 Linux: AT_HWCAP; macOS: sysctl).
// Only the dispatch point (cpp/quants/dispatch.cpp) consults this.
#pragma once

namespace ember {

struct CpuFeatures {
    bool avx2 = false;
    bool fma = false;
    bool f16c = false;
    bool avx512 = false;   // AVX-512 F, BW, VL and VNNI, with the OS saving the ZMM and mask state
    bool neon = false;
    bool dotprod = false;  // AArch64 SDOT/UDOT (FEAT_DotProd, HWCAP_ASIMDDP)
};

const CpuFeatures& cpu_features();

}  // namespace ember
