"""The `main` program (packaged as ember/bin/ember-main) and the `ember run / chat / perplexity /
pull` commands, against the real default model.

The binary is found through the installed package, the way a user gets it. Speed is never
asserted (the machine is shared); only the shape of the timing lines is.
"""

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import ember

BINARY = Path(ember.__file__).parent / "bin" / "ember-main"
THREADS = min(2, os.cpu_count() or 1)
PROMPT = "The capital of France is"
CHAT_PROMPT = "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"


def run_main(*args, stdin=None, timeout=120):
    assert BINARY.is_file(), f"{BINARY} is missing: the package must ship ember-main"
    return subprocess.run([str(BINARY), *map(str, args)], input=stdin, capture_output=True, text=True,
                          timeout=timeout)


def run_cli(*args, stdin=None, env=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "ember.cli", *map(str, args)], input=stdin, capture_output=True,
                          text=True, env=env, timeout=timeout)


def generate(model_path, *args, **kw):
    done = run_main("-m", model_path, "-t", THREADS, *args, **kw)
    assert done.returncode == 0, done.stderr
    return done


def assert_one_error_line(done):
    assert done.returncode == 1, (done.returncode, done.stderr)
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert "Traceback" not in done.stderr
    return lines[0]


@pytest.fixture(scope="module")
def model(smollm2_path):
    return ember.Model(smollm2_path, n_threads=THREADS, verbose=False)


@pytest.fixture(scope="module")
def greedy(smollm2_path):
    return generate(smollm2_path, "-p", PROMPT, "-n", 16, "--temp", 0)


# -- generation ------------------------------------------------------------------------------------
def test_greedy_is_deterministic_and_matches_python(smollm2_path, model, greedy):
    assert greedy.stdout.startswith(PROMPT)
    again = generate(smollm2_path, "-p", PROMPT, "-n", 16, "--temp", 0)
    assert again.stdout == greedy.stdout
    want = model.generate(PROMPT, max_tokens=16, temperature=0)
    assert greedy.stdout[len(PROMPT):] == want and want


def test_timings_and_load_report_on_stderr(model, greedy):
    err = greedy.stderr
    n_prompt = len(model.tokenize(PROMPT))
    assert re.search(r"^ember: load time = \d+\.\d\d ms$", err, re.M), err
    assert re.search(rf"^ember: prompt eval time = \d+\.\d\d ms / {n_prompt} tokens \(\d+\.\d\d ms per token, "
                     r"\d+\.\d\d tokens per second\)$", err, re.M), err
    assert re.search(r"^ember: eval time = \d+\.\d\d ms / 16 runs \(\d+\.\d\d ms per token, "
                     r"\d+\.\d\d tokens per second\)$", err, re.M), err
    assert re.search(rf"^ember: total time = \d+\.\d\d ms / {n_prompt + 16} tokens$", err, re.M), err
    assert re.search(r"^ember: KV cache = \d+\.\d\d MiB \(f16, 256 blocks of 16 tokens\)$", err, re.M), err
    assert re.search(rf"n_ctx = 4096 .*n_threads = {THREADS}, isa = \w+", err), err
    assert "error" not in err
    assert PROMPT not in err  # the text goes to stdout only


def test_seeded_sampling_is_reproducible(smollm2_path):
    args = ("-p", "Once upon a time", "-n", 20, "--temp", 1.0, "--no-display-prompt")
    a = generate(smollm2_path, *args, "-s", 42)
    b = generate(smollm2_path, *args, "-s", 42)
    c = generate(smollm2_path, *args, "-s", 43)
    assert a.stdout == b.stdout and a.stdout
    assert c.stdout != a.stdout
    assert re.search(r"^ember: seed = 42$", a.stderr, re.M)


def test_random_seed_is_printed(smollm2_path):
    done = generate(smollm2_path, "-p", PROMPT, "-n", 0)
    assert re.search(r"^ember: seed = \d+$", done.stderr, re.M), done.stderr


def test_verbose_prompt_lists_the_token_ids(smollm2_path, model):
    done = generate(smollm2_path, "-p", CHAT_PROMPT, "-n", 0, "--verbose-prompt")
    ids = [int(m) for m in re.findall(r"^\s*(\d+) -> '", done.stderr, re.M)]
    assert ids == model.tokenize(CHAT_PROMPT.replace("\\n", "\n"))
    assert "-> '<|im_start|>'" in done.stderr  # parse_special: the control token, not its letters


def test_escapes_are_processed_unless_no_escape(smollm2_path):
    done = generate(smollm2_path, "-p", "a\\tb\\nc\\\\d", "-n", 0)
    assert done.stdout == "a\tb\nc\\d"
    done = generate(smollm2_path, "-p", "a\\tb\\nc", "-n", 0, "--no-escape")
    assert done.stdout == "a\\tb\\nc"


def test_reverse_prompt_ends_the_output_before_it(smollm2_path, greedy):
    full = greedy.stdout[len(PROMPT):]
    stop = full[6:10]  # a piece from the middle of the greedy completion
    want = full[:full.find(stop)]
    done = generate(smollm2_path, "-p", PROMPT, "-n", 16, "--temp", 0, "-r", stop, "-r", "never appears")
    assert done.stdout == PROMPT + want


def test_n_zero_echoes_the_prompt_only(smollm2_path):
    done = generate(smollm2_path, "-p", PROMPT, "-n", 0)
    assert done.stdout == PROMPT
    assert re.search(r"eval time = \d+\.\d\d ms / 0 runs", done.stderr)
    assert generate(smollm2_path, "-p", PROMPT, "-n", 0, "--no-display-prompt").stdout == ""


def test_ignore_eos_keeps_generating(smollm2_path):
    runs = lambda done: int(re.search(r"^ember: eval time = .* / (\d+) runs", done.stderr, re.M).group(1))
    ended = generate(smollm2_path, "-p", CHAT_PROMPT, "-n", 14, "--temp", 0)
    assert runs(ended) < 14  # the reply ends with <|im_end|>
    kept = generate(smollm2_path, "-p", CHAT_PROMPT, "-n", 14, "--temp", 0, "--ignore-eos")
    assert runs(kept) == 14
    assert kept.stdout.startswith(ended.stdout)


def test_prompt_from_file(smollm2_path, tmp_path):
    f = tmp_path / "prompt.txt"
    f.write_text(PROMPT + "\n")  # one trailing newline is dropped, as llama.cpp does
    done = generate(smollm2_path, "-f", f, "-n", 0)
    assert done.stdout == PROMPT


@pytest.mark.slow
def test_conversation_with_piped_stdin(smollm2_path):
    done = generate(smollm2_path, "-cnv", "-n", 24, "--temp", 0, stdin="What is 2+2?\nAnd 3+3?\n")
    assert "chat format = chatml" in done.stderr
    turns = done.stdout.split("> ")
    assert turns[0] == "" and len(turns) == 4, done.stdout  # two replies, then the prompt that met EOF
    assert turns[1].strip() and turns[2].strip()
    assert turns[3].strip() == ""
    assert "<|im_end|>" not in done.stdout


def test_help_and_version():
    done = run_main("--help")
    assert done.returncode == 0 and "--ctx-size" in done.stdout and "--reverse-prompt" in done.stdout
    done = run_main("--version")
    assert done.returncode == 0 and done.stdout.startswith("ember main ")


# -- errors: one line, exit 1 ----------------------------------------------------------------------
BAD_FLAGS = [
    (["--no-such-flag"], "unknown argument"),
    (["-p", PROMPT, "-n"], "-n needs a value"),
    (["-n", "many"], "-n expects an integer"),
    (["--temp", "warm"], "--temp expects a number"),
    (["-t", "0"], "-t must be at least 1"),
    (["-c", "-5"], "-c must be at least 0"),
    (["-b", "0"], "-b must be at least 1"),
    (["-n", "-7"], "-n must be"),
    (["--top-p", "1.5"], "--top-p must be in (0, 1]"),
    (["--temp", "-1"], "--temp must be >= 0"),
    (["-s", "seven"], "-s expects"),
    (["-ctk", "f16", "-ctv", "f32"], "one type"),
    (["-ctk", "q8_0"], "f16 or f32"),
    (["-f", "/nonexistent/prompt.txt"], "cannot read prompt file"),
    (["stray"], "unexpected argument"),
]


@pytest.mark.parametrize("args,message", BAD_FLAGS, ids=[" ".join(a) for a, _ in BAD_FLAGS])
def test_bad_flags_are_one_error_line(smollm2_path, args, message):
    line = assert_one_error_line(run_main("-m", smollm2_path, *args))
    assert message in line


def test_missing_model_flag_is_one_error_line():
    assert "-m" in assert_one_error_line(run_main("-p", PROMPT))


def test_bad_model_files_are_one_error_line(tmp_path):
    text = tmp_path / "notes.gguf"
    text.write_text("this is not a model\n")
    assert "notes.gguf" in assert_one_error_line(run_main("-m", text, "-p", PROMPT))
    missing = tmp_path / "missing.gguf"
    assert "missing.gguf" in assert_one_error_line(run_main("-m", missing, "-p", PROMPT))


def test_prompt_longer_than_the_context_is_one_error_line(smollm2_path):
    line = assert_one_error_line(run_main("-m", smollm2_path, "-c", 8, "-p", "one two three four five six seven eight nine"))
    assert "context" in line


# -- ember run / perplexity / pull / chat ------------------------------------------------------------
@pytest.fixture
def cache_env(smollm2_path):
    return {**os.environ, "EMBER_CACHE": str(Path(smollm2_path).parent)}


def test_ember_run_uses_the_default_model(smollm2_path, cache_env, greedy):
    done = run_cli("run", "-p", PROMPT, "-n", 4, "--temp", 0, "-t", THREADS, env=cache_env)
    assert done.returncode == 0, done.stderr
    assert str(smollm2_path) in done.stderr  # the load report names the fetched file
    assert greedy.stdout.startswith(done.stdout) and len(done.stdout) > len(PROMPT)


def test_ember_run_passes_errors_through(cache_env):
    done = run_cli("run", "-t", "0", env=cache_env)
    assert_one_error_line(done)


def test_ember_perplexity_matches_model_perplexity(smollm2_path, model, tmp_path):
    text = ("The quick brown fox jumps over the lazy dog. " * 3 +
            "Paris is the capital of France, and Berlin is the capital of Germany. ") * 6
    f = tmp_path / "text.txt"
    f.write_text(text)
    done = run_cli("perplexity", "-m", smollm2_path, "-f", f, "-c", 64, "--chunks", 2, "-t", THREADS)
    assert done.returncode == 0, done.stderr
    assert re.match(r"^\[1\]\d+\.\d{4},\[2\]\d+\.\d{4},$", done.stdout.splitlines()[0]), done.stdout
    m = re.search(r"^Final estimate: PPL = (\d+\.\d{4}) \+/- (\d+\.\d{5})$", done.stdout, re.M)
    assert m, done.stdout
    want = model.perplexity(text, 64, n_chunks=2)
    assert math.isfinite(want["ppl"]) and m.group(1) == f"{want['ppl']:.4f}"
    assert "tokens per second" in done.stderr


def test_ember_perplexity_errors_are_one_line(smollm2_path, tmp_path):
    f = tmp_path / "short.txt"
    f.write_text("too short")
    done = run_cli("perplexity", "-m", smollm2_path, "-f", f, "-c", 64)
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1].startswith("ember perplexity: error: ")


def test_ember_pull_prints_the_cached_path(smollm2_path, cache_env):
    done = run_cli("pull", "smollm2", env=cache_env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(smollm2_path)
    done = run_cli("pull", "no-such-model", env=cache_env)
    assert done.returncode == 1 and done.stderr.startswith("ember pull: error: unknown model")


@pytest.mark.slow
def test_ember_chat_answers_piped_stdin(model, cache_env):
    question = "What is 2+2?"
    done = run_cli("chat", "-n", 12, "--temp", 0, "-t", THREADS, stdin=question + "\n", env=cache_env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("> ") and done.stdout.endswith("\n> \n"), done.stdout
    reply = done.stdout[len("> "):-len("\n> \n")]
    assert reply == model.chat([{"role": "user", "content": question}], 12, temperature=0) and reply
