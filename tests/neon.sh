#!/usr/bin/env bash
# The AArch64 NEON kernels, cross-compiled and run under qemu-user (tests/run.sh calls this after
# the sanitizer step; it also runs on its own: `bash tests/neon.sh`).
#   1. finds aarch64-linux-gnu-g++ and qemu-aarch64, installing them with apt-get when missing and
#      possible (root); without them it prints one SKIP line and exits 0;
#   2. configures build/neon with cmake/aarch64-linux-gnu.cmake (core, kernel_test and main only:
#      no Python) and builds kernel_test and main;
#   3. runs kernel_test (NEON vs scalar, tests/cpp/kernel_test.cpp) on qemu's `max` CPU (with
#      the dot-product extension: SDOT tiles, and the widening ones checked alongside) and on a
#      Cortex-A53 (without it: the runtime check must pick the widening tiles);
#   4. when the default model is in ~/.cache/ember, generates 8 greedy tokens with the cross-built
#      main under qemu, NEON and scalar: a smoke test of the whole forward pass on AArch64.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
jobs=${CMAKE_BUILD_PARALLEL_LEVEL:-2}

have_tools() { command -v aarch64-linux-gnu-g++ >/dev/null && command -v qemu-aarch64 >/dev/null; }
if ! have_tools && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "neon: installing g++-aarch64-linux-gnu qemu-user"
    export DEBIAN_FRONTEND=noninteractive
    pkgs="g++-aarch64-linux-gnu qemu-user"
    apt-get install -y -qq --no-install-recommends $pkgs >/dev/null 2>&1 ||
        { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq --no-install-recommends $pkgs >/dev/null 2>&1; } || true
fi
if ! have_tools; then
    echo "SKIP tests/neon.sh: no aarch64-linux-gnu-g++ / qemu-aarch64 (apt-get install g++-aarch64-linux-gnu qemu-user)"
    exit 0
fi
sysroot=/usr/aarch64-linux-gnu

generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S . -B build/neon "${generator[@]}" -DCMAKE_TOOLCHAIN_FILE="$PWD/cmake/aarch64-linux-gnu.cmake" \
      -DCMAKE_BUILD_TYPE=Release -DEMBER_PYTHON=OFF >/dev/null
cmake --build build/neon -j"$jobs" --target kernel_test main
echo "neon: built in $(( $(date +%s) - start )) s"

run() { qemu-aarch64 -L "$sysroot" "$@"; }
status=0
for cpu in max cortex-a53; do
    log=build/neon/kernel_test.$cpu.log
    if run -cpu "$cpu" build/neon/bin/kernel_test >"$log" 2>&1; then
        echo "neon: kernel_test on qemu -cpu $cpu: $(head -n 1 "$log" | cut -d: -f2-); $(tail -n 1 "$log" | cut -d: -f2-)"
    else
        echo "neon: kernel_test on qemu -cpu $cpu FAILED:"
        grep -v '^ok' "$log" || true
        status=1
    fi
done

model=${EMBER_NEON_MODEL:-$HOME/.cache/ember/SmolLM2-135M-Instruct.Q4_1.gguf}
if [ -f "$model" ]; then
    # The integer tiles give the scalar reference's bits, the float dots (attention) only nearly:
    # the greedy text usually equals the scalar path's, but a near-tie may flip (the AVX2 path
    # continues this prompt differently), so a difference is reported, not failed.
    for isa in neon scalar; do
        if EMBER_ISA=$isa run -cpu max build/neon/bin/main -m "$model" -p "The capital of France is" -n 8 --temp 0 -t 2 \
               --no-display-prompt >"build/neon/main.$isa.out" 2>"build/neon/main.$isa.err" && [ -s "build/neon/main.$isa.out" ]; then
            echo "neon: main ($isa) on qemu -cpu max: $(tr '\n' ' ' <"build/neon/main.$isa.out")"
        else
            echo "neon: main ($isa) on qemu -cpu max FAILED:"
            tail -n 5 "build/neon/main.$isa.err"
            status=1
        fi
    done
    if cmp -s build/neon/main.neon.out build/neon/main.scalar.out; then
        echo "neon: main: the same text with NEON as with the scalar kernels"
    else
        echo "neon: main: NEON and scalar texts differ (allowed: float summation order)"
    fi
fi
echo "neon: $(( $(date +%s) - start )) s"
exit $status
