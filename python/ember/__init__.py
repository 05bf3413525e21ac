"""ember: a fast, small LLM inference engine for GGUF models.

Today: the GGUF reader (``GGUFFile``) and every ggml quant format (``ember.quants``).
"""

from . import quants
from .errors import GGUFError
from .gguf import GGUFFile, TensorInfo
from .quantize import quantize_model

__all__ = ["GGUFFile", "TensorInfo", "GGUFError", "quants", "quantize_model"]
__version__ = "0.1.0"
