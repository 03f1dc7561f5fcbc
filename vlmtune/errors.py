"""The two data errors every command reports in one line (vlmtune.cli): kept apart from the datasets, so that
light modules (vlmtune.video) raise them without importing torch."""


class DataError(ValueError):
    """A problem with the data, reported before any model is loaded; the message names sample and field."""


class BadSample(ValueError):
    """A sample that cannot be trained on (e.g. it cannot fit `model_max_length`); names the sample."""
