"""The `ember` command line: `ember info` on real and broken files."""

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ember import cli


def test_info_summarizes_smollm2(smollm2_path, capsys):
    assert cli.main(["info", str(smollm2_path)]) == 0
    out = capsys.readouterr().out
    assert "architecture:  llama" in out
    assert "block_count                        30" in out
    assert "byte-level BPE (gpt2), pre 'smollm', 49152 tokens" in out
    assert "Q4_1" in out and "Q8_0" in out and "F32" in out
    assert "134.5 M" in out  # parameters


def test_info_summarizes_gemma3(gemma3_path, capsys):
    assert cli.main(["info", str(gemma3_path), "--tensors", "--metadata"]) == 0
    out = capsys.readouterr().out
    assert "architecture:  gemma3" in out
    assert "SentencePiece (llama)" in out
    assert "Q4_K" in out and "Q6_K" in out and "Q5_0" in out
    assert "blk.0.attn_q.weight" in out


def test_info_on_bad_files_is_one_line_and_exit_1(tmp_path, capsys):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\xff" * 8)
    assert cli.main(["info", str(bad)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("ember info: error: GGUF file") and "bad.gguf" in err and "\n" not in err
    assert cli.main(["info", str(tmp_path / "missing.gguf")]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"ember info: error: cannot open '{tmp_path / 'missing.gguf'}': No such file or directory"


def test_missing_file_error_keeps_oserror_fields(tmp_path):
    import errno

    from ember import GGUFFile
    with pytest.raises(FileNotFoundError) as ei:
        GGUFFile(str(tmp_path / "missing.gguf"))
    assert ei.value.errno == errno.ENOENT and str(ei.value).startswith("cannot open ")


@pytest.mark.parametrize("argv, message", [
    (["-m", "{missing}"], "cannot open"),
    (["-m", "{bad}"], "not a GGUF file"),
    (["-m", "{bad}", "--port", "abc"], "invalid int value"),
])
def test_serve_bad_arguments_are_one_line_and_exit_nonzero(tmp_path, argv, message):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a gguf file at all")
    argv = [a.format(missing=tmp_path / "missing.gguf", bad=bad) for a in argv]
    r = subprocess.run([sys.executable, "-m", "ember", "serve", "--port", "1", *argv], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode != 0
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("ember serve: error: ") and message in last, r.stderr


def test_console_script(smollm2_path):
    try:
        importlib.metadata.distribution("ember")
        command = [str(Path(sys.executable).parent / "ember")]  # installed: the console script
    except importlib.metadata.PackageNotFoundError:
        command = [sys.executable, "-m", "ember.cli"]  # running from a source tree
    done = subprocess.run(command + ["--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "info" in done.stdout
    done = subprocess.run(command + ["info", str(smollm2_path)], capture_output=True, text=True)
    assert done.returncode == 0 and "architecture:  llama" in done.stdout
    done = subprocess.run([sys.executable, "-m", "ember.cli", "info"], capture_output=True, text=True)
    assert done.returncode == 2 and "model" in done.stderr  # argparse: missing argument


def test_info_into_a_closed_pipe_is_quiet(smollm2_path):
    # `ember info model.gguf | head -1`: the reader has gone before ember writes
    r, w = os.pipe()
    os.close(r)
    try:
        done = subprocess.run([sys.executable, "-m", "ember.cli", "info", str(smollm2_path)], stdout=w,
                              stderr=subprocess.PIPE, text=True)
    finally:
        os.close(w)
    assert done.returncode == 0 and "error" not in done.stderr, done.stderr
