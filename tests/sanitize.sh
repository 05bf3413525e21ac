#!/usr/bin/env bash
# Build the C++ core, the extension and main with ASan + UBSan (build/asan) and run the tests that
# drive the C++ code hardest against it: GGUF, quants, fuzz, quantize tool, tokenizer API, then the
# engine's kernels, sampler, KV cache, errors, tiny-model parity and main's argument handling (the
# real-model tests are left to the fast build: under ASan they would take most of the CI budget).
# Python itself is not instrumented, so the sanitizer runtimes are preloaded; leak checking is off
# because the interpreter keeps its own allocations alive at exit.
set -euo pipefail
cd "$(dirname "$0")/.."

python -m pip install -q --disable-pip-version-check pybind11 cmake ninja
cmake -S . -B build/asan -G Ninja -DEMBER_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug \
      -Dpybind11_DIR="$(python -m pybind11 --cmakedir)" -DPython_EXECUTABLE="$(command -v python)" >/dev/null
cmake --build build/asan -j"${CMAKE_BUILD_PARALLEL_LEVEL:-2}"

# A package tree whose compiled module is the sanitized one.
pkg=build/asan/pkg
rm -rf "$pkg" && mkdir -p "$pkg/ember/bin" "$pkg/ember/convert"
cp python/ember/*.py "$pkg/ember/"
cp convert/*.py "$pkg/ember/convert/"
cp build/asan/_core*.so "$pkg/ember/"
cp build/asan/bin/main "$pkg/ember/bin/ember-main"

preload="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)"
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:allocator_may_return_null=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export PYTHONPATH="$PWD/$pkg"
(cd tests && LD_PRELOAD="$preload" python -m pytest -q -p no:cacheprovider \
    test_gguf.py test_quants.py test_gguf_fuzz.py test_quantize_tool.py test_tokenizer_api.py)
(cd tests && LD_PRELOAD="$preload" python -m pytest -q -p no:cacheprovider -m "not slow" \
    test_ops.py test_sampler.py test_kv_cache.py test_scheduler.py test_model_errors.py \
    test_model_parity.py::test_tiny_models_logits_and_greedy test_generate.py::test_context_limit \
    test_generate.py::test_logits_shape_and_consistency test_generate.py::test_bad_arguments)
# main (the sanitized binary): flag parsing and error paths
(cd tests && LD_PRELOAD="$preload" python -m pytest -q -p no:cacheprovider test_main.py -k "bad or missing or help or longer")
