"""Chat templates: render a GGUF's ``tokenizer.chat_template`` (Jinja) for a list of messages.

Templates come from model files, so they run in Jinja2's immutable sandbox: no attribute access
to Python internals, no mutation of the inputs. The environment mirrors what Hugging Face
transformers gives templates (trim_blocks, lstrip_blocks, ``raise_exception``, ``strftime_now``,
a ``tojson`` that keeps non-ASCII text), so hub templates render as they do there.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import lru_cache
from typing import Any, Dict, List, Mapping, Optional, Sequence

__all__ = ["render", "ChatTemplateError", "validate_messages"]


class ChatTemplateError(ValueError):
    """The template is invalid, raised an error itself, or the messages are malformed."""


def validate_messages(messages: Sequence[Mapping[str, Any]]) -> List[Dict[str, Any]]:
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence):
        raise TypeError("messages must be a list of {'role': ..., 'content': ...} dicts")
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping):
            raise TypeError(f"messages[{i}] must be a dict, got {type(m).__name__}")
        if not isinstance(m.get("role"), str):
            raise ChatTemplateError(f"messages[{i}] needs a string 'role'")
        if "content" in m and m["content"] is not None and not isinstance(m["content"], (str, list)):
            raise ChatTemplateError(f"messages[{i}]['content'] must be a string")
        out.append(dict(m))
    return out


def _environment():
    try:
        from jinja2.exceptions import TemplateError
        from jinja2.sandbox import ImmutableSandboxedEnvironment
    except ImportError as e:  # jinja2 is a dependency; this only guards a broken install
        raise ChatTemplateError("rendering chat templates needs the jinja2 package") from e

    def raise_exception(message: str):
        raise TemplateError(message)

    def tojson(value: Any, indent: Optional[int] = None, separators=None, sort_keys: bool = False, ensure_ascii: bool = False):
        return json.dumps(value, indent=indent, separators=separators, sort_keys=sort_keys, ensure_ascii=ensure_ascii)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env


@lru_cache(maxsize=8)
def _compile(template: str):
    """A template compiled once: compiling costs milliseconds, which a server pays per request."""
    return _environment().from_string(template)


def render(template: str, messages: Sequence[Mapping[str, Any]], *, add_generation_prompt: bool = True,
           bos_token: str = "", eos_token: str = "", **extra: Any) -> str:
    """Render a chat template. Extra keyword arguments (tools, documents, ...) reach the template."""
    if not isinstance(template, str) or not template:
        raise ChatTemplateError("the model has no chat template")
    msgs = validate_messages(messages)
    from jinja2.exceptions import TemplateError

    try:
        compiled = _compile(template)
        return compiled.render(messages=msgs, add_generation_prompt=add_generation_prompt, bos_token=bos_token,
                               eos_token=eos_token, **extra)
    except TemplateError as e:
        raise ChatTemplateError(f"chat template error: {e}") from None
