"""The GGUF reader against gguf-py's GGUFReader, on the real models and on files written here."""

import struct

import gguf
import numpy as np
import pytest

import ember
from ember import _core
from conftest import assert_bits_equal, finish_gguf


def _reader_metadata(r: gguf.GGUFReader):
    values, types = {}, {}
    for key, field in r.fields.items():
        if key.startswith("GGUF."):
            continue  # gguf-py's pseudo-fields for the header
        values[key] = field.contents()
        names = [gguf.GGUFValueType(t).name.lower() for t in field.types]
        types[key] = names[0] if len(names) == 1 else "array[" + names[1] + "]"
    return values, types


def _check_against_gguf_py(path):
    r = gguf.GGUFReader(path)
    with ember.GGUFFile(path) as f:
        assert f.version == r.fields["GGUF.version"].contents()
        values, types = _reader_metadata(r)
        assert list(f.metadata) == list(values), "keys or key order differ"
        for key, want in values.items():
            if types[key] == "array[array]":
                continue  # gguf-py flattens nested arrays; checked separately below
            assert f.metadata[key] == want, key
        mine = {k: ("array[array]" if v.startswith("array[array") else v) for k, v in f.metadata_types.items()}
        assert mine == types
        assert [t.name for t in f.tensors] == [t.name for t in r.tensors]
        for mine, theirs in zip(f.tensors, r.tensors):
            assert mine.shape == tuple(int(d) for d in reversed(theirs.shape)), mine.name
            assert mine.type == theirs.tensor_type.name, mine.name
            assert mine.offset == theirs.data_offset, mine.name
            assert mine.nbytes == theirs.n_bytes, mine.name
            raw = f.raw_tensor(mine.name)
            assert raw.dtype == np.uint8 and not raw.flags.writeable
            assert raw.tobytes() == theirs.data.tobytes(), mine.name
            want = gguf.quants.dequantize(theirs.data, theirs.tensor_type).reshape(mine.shape)
            assert_bits_equal(f.read_tensor(mine.name), want, mine.name)
        return {t.type for t in f.tensors}


@pytest.mark.slow
def test_smollm2_matches_gguf_py(smollm2_path):
    assert _check_against_gguf_py(smollm2_path) == {"F32", "Q4_1", "Q8_0"}


@pytest.mark.slow
def test_gemma3_matches_gguf_py(gemma3_path):
    assert _check_against_gguf_py(gemma3_path) == {"F32", "Q5_0", "Q8_0", "Q4_K", "Q6_K"}


@pytest.mark.slow
def test_every_isa_reads_the_same(gemma3_path):
    reader = _core.GGUFReader(str(gemma3_path))
    isas = [i for i in ("scalar", "avx2", "avx512", "neon") if _core.isa_supported(i)]
    for name, *_ in reader.tensor_infos():
        ref = reader.dequantize(name, "scalar")
        for isa in isas[1:]:
            assert_bits_equal(reader.dequantize(name, isa), ref, f"{name} ({isa})")


def _write(path, version=3, alignment=None):
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_uint8("t.u8", 200)
    w.add_int8("t.i8", -100)
    w.add_uint16("t.u16", 60000)
    w.add_int16("t.i16", -30000)
    w.add_uint32("t.u32", 4_000_000_000)
    w.add_int32("t.i32", -2_000_000_000)
    w.add_uint64("t.u64", 2**64 - 1)
    w.add_int64("t.i64", -(2**63))
    w.add_float32("t.f32", 0.1)
    w.add_float64("t.f64", 1e300)
    w.add_bool("t.bool", True)
    w.add_string("t.str", "héllo ✓ 😀")
    w.add_key_value("t.empty", "", gguf.GGUFValueType.STRING)  # add_string skips empty strings
    w.add_array("t.arr_i", [1, -2, 3])
    w.add_array("t.arr_f", [0.5, 1.5])
    w.add_array("t.arr_s", ["a", "", "ü"])
    w.add_array("t.arr_nested", [[1, 2], [3]])
    if alignment:
        w.add_custom_alignment(alignment)
    rng = np.random.default_rng(1)
    w.add_tensor("a", rng.standard_normal((3, 4, 5)).astype(np.float32))
    w.add_tensor("b", rng.standard_normal(7).astype(np.float16))
    q = gguf.quants.quantize(rng.standard_normal((2, 64)).astype(np.float32), gguf.GGMLQuantizationType.Q8_0)
    w.add_tensor("c", q, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    finish_gguf(w)
    if version != 3:
        data = bytearray(path.read_bytes())
        data[4:8] = struct.pack("<I", version)
        path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("version", [2, 3])
@pytest.mark.parametrize("alignment", [None, 64, 1])
def test_every_value_type_round_trips(tmp_path, version, alignment):
    path = _write(tmp_path / "t.gguf", version, alignment)
    _check_against_gguf_py(path)
    with ember.GGUFFile(path) as f:
        md = f.metadata
        assert f.version == version
        assert f.alignment == (alignment or 32)
        assert md["t.u64"] == 2**64 - 1 and md["t.i64"] == -(2**63)
        assert md["t.u8"] == 200 and md["t.i8"] == -100 and md["t.bool"] is True
        assert md["t.f32"] == float(np.float32(0.1)) and md["t.f64"] == 1e300
        assert md["t.str"] == "héllo ✓ 😀" and md["t.empty"] == ""
        assert md["t.arr_s"] == ["a", "", "ü"] and md["t.arr_nested"] == [[1, 2], [3]]
        assert f.metadata_types["t.arr_nested"] == "array[array[int32]]"
        assert f.tensor_info("a").shape == (3, 4, 5)
        assert f.data_offset % f.alignment == 0


def test_views_outlive_close(tmp_path):
    path = _write(tmp_path / "t.gguf")
    f = ember.GGUFFile(path)
    raw = f.raw_tensor("a")
    want = f.read_tensor("a").copy()
    f.close()
    assert f.closed
    with pytest.raises(ValueError, match="closed"):
        f.metadata
    with pytest.raises(ValueError, match="closed"):
        f.read_tensor("a")
    del f
    assert np.array_equal(raw.view(np.float32).reshape(3, 4, 5), want)
    with pytest.raises(ValueError):
        raw[0, 0, 0] = 1  # read-only view of the mapping


def test_unknown_tensor_name(tmp_path):
    with ember.GGUFFile(_write(tmp_path / "t.gguf")) as f:
        with pytest.raises(KeyError, match="nope"):
            f.read_tensor("nope")
        with pytest.raises(KeyError, match="nope"):
            f.raw_tensor("nope")


def test_invalid_utf8_is_kept_losslessly(tmp_path):
    path = tmp_path / "t.gguf"
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_string("t.str", "XXXX")
    finish_gguf(w)
    data = path.read_bytes().replace(b"XXXX", b"a\xff\xfeb")
    path.write_bytes(data)
    with ember.GGUFFile(path) as f:
        s = f.metadata["t.str"]
    assert s.encode("utf-8", "surrogateescape") == b"a\xff\xfeb"


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(FileNotFoundError):
        ember.GGUFFile(tmp_path / "missing.gguf")
    with pytest.raises(ember.GGUFError, match="missing.gguf"):
        ember.GGUFFile(tmp_path / "missing.gguf")
    with pytest.raises(ember.GGUFError, match="directory"):
        ember.GGUFFile(tmp_path)


def test_unsupported_dequantize_is_a_clear_error(tmp_path):
    path = tmp_path / "iq.gguf"
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_tensor("iq", np.zeros((1, 66), dtype=np.uint8), raw_dtype=gguf.GGMLQuantizationType.IQ2_XXS)
    finish_gguf(w)
    with ember.GGUFFile(path) as f:
        assert f.tensors[0].type == "IQ2_XXS" and f.tensors[0].shape == (1, 256)
        assert f.raw_tensor("iq").shape == (1, 66)
        with pytest.raises(ValueError, match="IQ2_XXS is not supported"):
            f.read_tensor("iq")
