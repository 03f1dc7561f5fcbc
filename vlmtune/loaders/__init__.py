"""Family loaders: each module loads a checkpoint of its family with `from_pretrained` and builds its tiny model.

A loader module exposes `load(path, **load_kwargs) -> (model, processor)` and `build_tiny(folder)`.
`vlmtune.loaders.base` holds the code they share.
"""
