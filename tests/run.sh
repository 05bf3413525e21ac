#!/usr/bin/env bash
# The project's test command (the README's second command; .ci/run calls it).
#   1. a virtual environment in .venv with ember installed from this tree plus its test extra,
#   2. pytest over tests/ against the installed package (models are fetched once into ~/.cache/ember),
#   3. the core rebuilt with AddressSanitizer + UndefinedBehaviorSanitizer, and the GGUF and quant
#      tests run again against that build (tests/sanitize.sh),
#   4. the AArch64 NEON kernels cross-compiled and checked against the scalar ones under qemu
#      (tests/neon.sh; one SKIP line where no cross toolchain can be had).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# shellcheck disable=SC1091
. .venv/bin/activate
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2}

start=$(date +%s)
python -m pip install -q --disable-pip-version-check '.[test]'
echo "install: $(( $(date +%s) - start )) s"

# Run from tests/ so that `import ember` resolves to the installed package, not the source tree.
(cd tests && python -m pytest -q -p no:cacheprovider "$@")

bash tests/sanitize.sh
bash tests/neon.sh
echo "total: $(( $(date +%s) - start )) s"
