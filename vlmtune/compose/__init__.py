"""`vlmtune compose`: a new VLM from a vision encoder and a causal LM, written as a native transformers class
(LLaVA's, or Idefics3's for the pixel-shuffle connector), which then trains and serves like any family.

    vlmtune compose --vision tiny-siglip --llm tiny-qwen3 --output_dir composed     # python -m vlmtune.compose

`build` composes and saves (and holds the command), `parts` loads and sizes the encoder and the LLM,
`pixel_shuffle` is the Idefics3-connector variant. It sits in the registry layer: the composed families'
tiny models (vlmtune.loaders.llava_composed) are built with it. May import: the registry (loaders, collators),
`vlmtune.arguments` and the bottom layer.
"""
