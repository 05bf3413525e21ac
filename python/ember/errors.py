"""Exception types raised by ember. The C++ core's errors are translated into these."""


class GGUFError(ValueError):
    """A GGUF file is malformed, truncated, corrupted or uses something ember does not support.

    The message names the file, the field and the problem.
    """


class GGUFOpenError(GGUFError, OSError):
    """A GGUF file could not be opened at all (permissions, a directory, ...)."""


class GGUFFileNotFoundError(GGUFOpenError, FileNotFoundError):
    """The GGUF file does not exist."""
