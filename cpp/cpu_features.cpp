// cpu_features.cpp — CPUID probing (AVX2 and AVX-512 also need the OS to save their registers:
// OSXSAVE + XCR0), and on AArch64 the kernel's hardware capability bits.
#include "cpu_features.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#elif defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#elif defined(__aarch64__) && defined(__APPLE__)
#include <sys/sysctl.h>
#endif

namespace ember {

static CpuFeatures probe() {
    CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
    const bool osxsave = c & (1u << 27);
    const bool fma = c & (1u << 12);
    const bool f16c = c & (1u << 29);
    bool ymm_enabled = false, zmm_enabled = false;
    if (osxsave) {
        unsigned lo, hi;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        ymm_enabled = (lo & 0x6) == 0x6;    // XMM and YMM state saved by the OS
        zmm_enabled = (lo & 0xE6) == 0xE6;  // and the opmask and all 32 ZMM registers
    }
    bool avx2 = false, avx512 = false;
    if (__get_cpuid_max(0, nullptr) >= 7) {
        __cpuid_count(7, 0, a, b, c, d);
        avx2 = b & (1u << 5);
        // F (b16), BW (b30), VL (b31); VNNI is ECX bit 11
        avx512 = (b & (1u << 16)) && (b & (1u << 30)) && (b & (1u << 31)) && (c & (1u << 11));
    }
    f.avx2 = avx2 && ymm_enabled;
    f.avx512 = avx512 && zmm_enabled && f.avx2;
    f.fma = fma && ymm_enabled;
    f.f16c = f16c && ymm_enabled;
#elif defined(__aarch64__)
    f.neon = true;  // Advanced SIMD is mandatory on AArch64
#if defined(__linux__)
    // The dot-product instructions are optional before ARMv8.4; the kernel reports them in
    // AT_HWCAP (bit 20, HWCAP_ASIMDDP; spelled out in case an old libc lacks the name).
    f.dotprod = (getauxval(AT_HWCAP) & (1ul << 20)) != 0;
#elif defined(__APPLE__)
    int v = 0;
    size_t len = sizeof v;
    f.dotprod = sysctlbyname("hw.optional.arm.FEAT_DotProd", &v, &len, nullptr, 0) == 0 && v != 0;
#endif
#endif
    return f;
}

const CpuFeatures& cpu_features() {
    static const CpuFeatures features = probe();
    return features;
}

}  // namespace ember
