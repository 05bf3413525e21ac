"""ember: a fast, small LLM inference engine for GGUF models.

Today: the GGUF reader (``GGUFFile``), every ggml quant format (``ember.quants``), the quantizer
(``quantize_model``), the converter (``ember.convert``) and tokenizers (``Tokenizer``).
"""

from . import quants
from .errors import GGUFError
from .gguf import GGUFFile, TensorInfo
from .quantize import quantize_model
from .tokenizer import StreamDecoder, Tokenizer

__all__ = ["GGUFFile", "TensorInfo", "GGUFError", "quants", "quantize_model", "Tokenizer", "StreamDecoder"]
__version__ = "0.1.0"
