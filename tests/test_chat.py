"""Chat templates: ember's Jinja rendering against transformers' own renderer on the real
models' templates, and the C++ renderers (for `main`) against Jinja on canonical templates."""

import pytest

import ember
from ember import _core, chat

transformers = pytest.importorskip("transformers")
from transformers.utils.chat_template_utils import render_jinja_template  # noqa: E402

CONVERSATIONS = [
    [{"role": "user", "content": "Hello!"}],
    [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hi"}],
    [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "2+2?"},
     {"role": "assistant", "content": "4"}, {"role": "user", "content": "  and 3+3?  \n"}],
    [{"role": "user", "content": "Ünïcödé ✓ 日本語 😀"}, {"role": "assistant", "content": "ok"}],
]

# Canonical templates of the four formats the C++ side renders, written here in Jinja.
CANONICAL = {
    "chatml": ("{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>' + '\n' }}"
               "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"),
    "llama3": ("{{ bos_token }}{% for m in messages %}{{ '<|start_header_id|>' + m['role'] + '<|end_header_id|>\n\n' "
               "+ m['content'] | trim + '<|eot_id|>' }}{% endfor %}"
               "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"),
    "gemma": ("{{ bos_token }}{% if messages[0]['role'] == 'system' %}{% set prefix = messages[0]['content'] + '\n\n' %}"
              "{% set loop_messages = messages[1:] %}{% else %}{% set prefix = '' %}{% set loop_messages = messages %}{% endif %}"
              "{% for m in loop_messages %}{% set role = 'model' if m['role'] == 'assistant' else m['role'] %}"
              "{{ '<start_of_turn>' + role + '\n' + (prefix if loop.first else '') + m['content'] | trim + '<end_of_turn>\n' }}"
              "{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"),
    "mistral": ("{{ bos_token }}{% if messages[0]['role'] == 'system' %}{% set prefix = messages[0]['content'] + '\n\n' %}"
                "{% set loop_messages = messages[1:] %}{% else %}{% set prefix = '' %}{% set loop_messages = messages %}{% endif %}"
                "{% for m in loop_messages %}{% if m['role'] == 'user' %}{{ '[INST] ' + (prefix if loop.first else '') "
                "+ m['content'] + ' [/INST]' }}{% else %}{{ m['content'] + eos_token }}{% endif %}{% endfor %}"),
}


def test_real_template_renders_like_transformers(smollm2_path):
    tok = ember.Tokenizer.from_gguf(smollm2_path)
    assert tok.chat_template
    bos = tok.id_to_token(tok.bos_id)
    eos = tok.id_to_token(tok.eos_id)
    for conv in CONVERSATIONS:
        for gen in (True, False):
            want = render_jinja_template([conv], chat_template=tok.chat_template, add_generation_prompt=gen,
                                         bos_token=bos, eos_token=eos)[0][0]
            assert tok.apply_chat_template(conv, add_generation_prompt=gen) == want


@pytest.mark.parametrize("fmt", sorted(CANONICAL))
def test_cpp_renderer_matches_jinja(fmt):
    template = CANONICAL[fmt]
    assert _core.chat_format(template) == fmt
    for conv in CONVERSATIONS:
        if fmt == "mistral" and conv[-1]["role"] == "assistant":
            gens = (False,)
        else:
            gens = (True, False) if fmt != "mistral" else (False,)
        for gen in gens:
            want = chat.render(template, conv, add_generation_prompt=gen, bos_token="<s>", eos_token="</s>")
            got = _core.render_chat(template, [(m["role"], m["content"]) for m in conv], gen, "<s>", "</s>")
            assert got == want, (fmt, conv)


def test_cpp_recognizes_the_real_template(smollm2_path):
    tok = ember.Tokenizer.from_gguf(smollm2_path)
    assert _core.chat_format(tok.chat_template) == "chatml"
    # With a system message present, SmolLM2's template adds no default one, so C++ and Jinja agree.
    conv = CONVERSATIONS[2]
    bos = tok.id_to_token(tok.bos_id)
    want = tok.apply_chat_template(conv)
    got = _core.render_chat(tok.chat_template, [(m["role"], m["content"]) for m in conv], True, bos, "")
    assert got == want


def test_a_model_without_template_is_a_clear_error(gemma3_path):
    tok = ember.Tokenizer.from_gguf(gemma3_path)  # this GGUF carries no tokenizer.chat_template
    assert tok.chat_template is None
    with pytest.raises(chat.ChatTemplateError, match="no chat template"):
        tok.apply_chat_template([{"role": "user", "content": "hi"}])


def test_bad_templates_and_messages():
    with pytest.raises(ValueError, match="unrecognized chat template"):
        _core.chat_format("{{ messages }}")
    with pytest.raises(ValueError, match="no chat template"):
        _core.chat_format("")
    with pytest.raises(ValueError, match="role must be"):
        _core.render_chat(CANONICAL["chatml"], [("wizard", "hi")], True, "", "")
    with pytest.raises(chat.ChatTemplateError, match="chat template error"):
        chat.render("{% for %}", [{"role": "user", "content": "x"}])
    with pytest.raises(chat.ChatTemplateError, match="nope"):
        chat.render("{{ raise_exception('nope') }}", [{"role": "user", "content": "x"}])
    with pytest.raises(TypeError):
        chat.render(CANONICAL["chatml"], "not a list")
    with pytest.raises(chat.ChatTemplateError, match="role"):
        chat.render(CANONICAL["chatml"], [{"content": "x"}])
    # the sandbox refuses to reach Python internals
    with pytest.raises(chat.ChatTemplateError):
        chat.render("{{ messages.__class__.__mro__[1].__subclasses__() }}", [{"role": "user", "content": "x"}])
