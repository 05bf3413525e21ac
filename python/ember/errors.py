"""Exception types raised by ember. The C++ core's errors are translated into these."""


class GGUFError(ValueError):
    """A GGUF file is malformed, truncated, corrupted or uses something ember does not support.

    The message names the file, the field and the problem.
    """


class GGUFOpenError(GGUFError, OSError):
    """A GGUF file could not be opened at all (permissions, a directory, ...)."""

    # ValueError comes first in the bases, so OSError's own constructor never sees the
    # (errno, message) arguments: set errno/strerror here, and print just the message (it names
    # the file and the reason) rather than the tuple.
    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        if len(args) == 2 and isinstance(args[0], int) and isinstance(args[1], str):
            self.errno, self.strerror = args

    def __str__(self) -> str:
        return self.strerror if isinstance(self.strerror, str) else super().__str__()


class GGUFFileNotFoundError(GGUFOpenError, FileNotFoundError):
    """The GGUF file does not exist."""


class CapacityError(RuntimeError):
    """A fixed capacity ran out: every sequence slot is in use, or the KV cache has too few free
    blocks. Nothing was changed; retrying after another request finishes may succeed."""
