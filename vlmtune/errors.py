"""The error types every command reports in one line (vlmtune.apps.cli): the bottom layer, imported by all and
importing nothing, so that light modules (vlmtune.data.video) raise them without importing torch.

Exit status: ArgumentError and UnknownNameError 2 (the command line is wrong), DataError and BadSample 1 (the
data is wrong). A message names the flag, sample or file, and what to do.
"""


class ArgumentError(ValueError):
    """An argument value that cannot work; raised while parsing, before anything is read or loaded."""


class UnknownNameError(KeyError):
    """An unknown model id or family; the message lists close matches."""


class DataError(ValueError):
    """A problem with the data, reported before any model is loaded; the message names sample and field."""


class BadSample(ValueError):
    """A sample that cannot be trained on (e.g. it cannot fit `model_max_length`); names the sample."""


class ServiceError(RuntimeError):
    """A service the run depends on (the GRPO rollout server) is unreachable, died, refused the key or serves
    another model; the message names it and what to do (exit status 1)."""
