"""The data layer: everything between a data file and a `Sample`, with no model in sight.

`formats` reads LLaVA / OpenAI-messages / ShareGPT / HF-dataset records into `vlmtune.datasets.Sample`s, `video`
picks and decodes frames (torch-free), `lengths` estimates token counts for length-grouped batches, `checks` finds
every problem in a data source before any weights load (what `vlmtune validate` prints). `vlmtune.datasets` (the
lazy and streaming datasets, the `TO_LOAD_IMAGE` table) belongs to this layer too and keeps its design-card name.
May import: the bottom layer (`vlmtune.errors`, `vlmtune.progress`) and each other; `vlmtune.arguments` only for
type hints. Nothing here imports the registry, a model or a command.
"""
