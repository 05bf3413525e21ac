#!/usr/bin/env bash
# Build the C++ core and the extension with ASan + UBSan (build/asan) and run the GGUF, quant,
# fuzz, quantize-tool and tokenizer-API tests against it. Python itself is not instrumented, so the sanitizer runtimes are preloaded;
# leak checking is off because the interpreter keeps its own allocations alive at exit.
set -euo pipefail
cd "$(dirname "$0")/.."

python -m pip install -q --disable-pip-version-check pybind11 cmake ninja
cmake -S . -B build/asan -G Ninja -DEMBER_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug \
      -Dpybind11_DIR="$(python -m pybind11 --cmakedir)" -DPython_EXECUTABLE="$(command -v python)" >/dev/null
cmake --build build/asan -j"${CMAKE_BUILD_PARALLEL_LEVEL:-2}"

# A package tree whose compiled module is the sanitized one.
pkg=build/asan/pkg
rm -rf "$pkg" && mkdir -p "$pkg/ember"
cp python/ember/*.py "$pkg/ember/"
cp build/asan/_core*.so "$pkg/ember/"

preload="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)"
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:allocator_may_return_null=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export PYTHONPATH="$PWD/$pkg"
(cd tests && LD_PRELOAD="$preload" python -m pytest -q -p no:cacheprovider \
    test_gguf.py test_quants.py test_gguf_fuzz.py test_quantize_tool.py test_tokenizer_api.py)
