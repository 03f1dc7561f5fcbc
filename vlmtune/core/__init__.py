"""The core of a run, shared by every method and by serving: load a registered model and make its parts
trainable (`modeling`), the one HF `Trainer` subclass (`trainer`), DeepSpeed/FSDP checks (`distributed`), fast
kernels (`fast_paths`), packed batches (`packing`), generation (`inference`), evaluation by generation
(`evaluation`) and reloading an output folder (`outputs`).
May import: the registry (`vlmtune.supported_models`, loaders, collators), `vlmtune.arguments`, the data layer and
the bottom layer. Never a method, a serving module or an app.
"""
