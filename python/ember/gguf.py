"""Reading GGUF files: metadata, tensor table, zero-copy raw data and dequantized tensors.

The file is memory-mapped by the C++ core and validated completely when opened; every problem
raises :class:`ember.GGUFError`. Arrays returned by :meth:`GGUFFile.raw_tensor` are read-only
views into the mapping and keep it alive even after :meth:`GGUFFile.close`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from . import _core


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: Tuple[int, ...]  # numpy order: the reverse of ggml's ne
    type: str               # ggml type name, e.g. "Q4_1"
    offset: int             # absolute byte offset of the data in the file
    nbytes: int

    @property
    def n_elements(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


class GGUFFile:
    """A GGUF file opened for reading.

    >>> with ember.GGUFFile("model.gguf") as f:
    ...     f.metadata["general.architecture"], f.tensors[0].type
    """

    def __init__(self, path: "str | os.PathLike[str]"):
        self.path = os.fspath(path)
        self._reader: Optional[_core.GGUFReader] = _core.GGUFReader(os.fsencode(self.path))
        self._metadata: Optional[Dict[str, Any]] = None
        self._tensors: Optional[List[TensorInfo]] = None
        self._by_name: Dict[str, TensorInfo] = {}

    # -- lifetime -------------------------------------------------------------------------
    def close(self) -> None:
        """Release the file. Views from raw_tensor() stay valid until they are dropped."""
        self._reader = None

    def __enter__(self) -> "GGUFFile":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self._reader is None

    def _r(self) -> _core.GGUFReader:
        if self._reader is None:
            raise ValueError(f"GGUF file '{self.path}' is closed")
        return self._reader

    # -- header ---------------------------------------------------------------------------
    @property
    def version(self) -> int:
        return self._r().version

    @property
    def alignment(self) -> int:
        return self._r().alignment

    @property
    def data_offset(self) -> int:
        """Absolute byte offset where the tensor data section starts."""
        return self._r().data_offset

    @property
    def file_size(self) -> int:
        return self._r().file_size

    @property
    def metadata(self) -> Dict[str, Any]:
        """Key/value metadata as plain Python values (int, float, bool, str, lists)."""
        if self._metadata is None:
            self._metadata = self._r().metadata()
        return self._metadata

    @property
    def metadata_types(self) -> Dict[str, str]:
        """The GGUF value type of each key, e.g. ``"uint32"`` or ``"array[string]"``."""
        return self._r().metadata_types()

    @property
    def tensors(self) -> List[TensorInfo]:
        if self._tensors is None:
            self._tensors = [TensorInfo(*t) for t in self._r().tensor_infos()]
            self._by_name = {t.name: t for t in self._tensors}
        return self._tensors

    def tensor_info(self, name: str) -> TensorInfo:
        self.tensors
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"no tensor named '{name}' in {self.path}") from None

    # -- data -----------------------------------------------------------------------------
    def raw_tensor(self, name: str) -> np.ndarray:
        """The tensor's bytes as a read-only uint8 view, shaped (..., bytes per row)."""
        return self._r().raw(name)

    def read_tensor(self, name: str) -> np.ndarray:
        """The tensor dequantized to float32, in numpy shape order."""
        return self._r().dequantize(name)

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"v{self.version}, {len(self.tensors)} tensors"
        return f"GGUFFile({self.path!r}, {state})"
