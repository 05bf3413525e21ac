"""Exception types raised by ember. The C++ core's errors are translated into these."""


class GGUFError(ValueError):
    """A GGUF file is malformed, truncated, corrupted or uses something ember does not support.

    The message names the file, the field and the problem.
    """


class GGUFOpenError(GGUFError, OSError):
    """A GGUF file could not be opened at all (permissions, a directory, ...)."""


class GGUFFileNotFoundError(GGUFOpenError, FileNotFoundError):
    """The GGUF file does not exist."""


class CapacityError(RuntimeError):
    """A fixed capacity ran out: every sequence slot is in use, or the KV cache has too few free
    blocks. Nothing was changed; retrying after another request finishes may succeed."""
