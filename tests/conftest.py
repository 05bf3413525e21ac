"""Shared fixtures: the real models (fetched once into the cache) and small helpers."""

import numpy as np
import pytest

from ember import models


@pytest.fixture(scope="session")
def smollm2_path():
    return models.fetch("smollm2", quiet=True)


@pytest.fixture(scope="session")
def gemma3_path():
    return models.fetch("gemma3", quiet=True)


def assert_bits_equal(got: np.ndarray, want: np.ndarray, what: str = "") -> None:
    """Bit-for-bit float32 comparison with a mismatch report (count, worst index, both values)."""
    got = np.ascontiguousarray(got, dtype=np.float32)
    want = np.ascontiguousarray(want, dtype=np.float32)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    diff = got.view(np.uint32) != want.view(np.uint32)
    if diff.any():
        idx = np.unravel_index(np.argmax(np.abs(got.astype(np.float64) - want) * diff), got.shape)
        pytest.fail(f"{what}: {int(diff.sum())} of {got.size} values differ; worst at {idx}: "
                    f"got {got[idx]!r}, want {want[idx]!r}")


def finish_gguf(writer) -> None:
    """Write everything a gguf.GGUFWriter has been given (header, key/values, tensors) and close it."""
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


@pytest.fixture(scope="session")
def smollm2_hf(smollm2_path, tmp_path_factory):
    """The SmolLM2 GGUF dequantized by transformers into a clean Hugging Face folder (float32)."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    out = tmp_path_factory.mktemp("smollm2_hf")
    d, name = str(smollm2_path.parent), smollm2_path.name
    loaded = transformers.AutoModelForCausalLM.from_pretrained(d, gguf_file=name, dtype=torch.float32)
    clean = transformers.LlamaForCausalLM(loaded.config)
    clean.load_state_dict(loaded.state_dict())
    clean.save_pretrained(out)
    transformers.AutoTokenizer.from_pretrained(d, gguf_file=name).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory):
    """A tiny random Llama (2 layers, 64 wide, a 320-token BPE vocabulary) converted to F32 GGUF."""
    pytest.importorskip("transformers")
    from ember.convert import convert
    from tiny_models import make_tiny_model

    d = tmp_path_factory.mktemp("tiny_llama")
    make_tiny_model("llama", d / "hf")
    convert(d / "hf", d / "tiny.gguf", "f32", progress=False)
    return d / "tiny.gguf"
