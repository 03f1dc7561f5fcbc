"""`vlmtune compose`: build a VLM from a vision encoder, a causal LM and a fresh projector, saved as a native
`LlavaForConditionalGeneration` checkpoint that every vlmtune command and plain transformers load.

    vlmtune compose --vision tiny-siglip --llm tiny-qwen3 --output_dir composed          # offline tiny parts
    vlmtune compose --vision google/siglip-so400m-patch14-384 --llm Qwen/Qwen3-0.6B --output_dir composed
    vlmtune compose --vision /models/clip-vit-large-patch14-336 --llm /models/Llama-3.2-1B-Instruct \\
        --output_dir composed --projector linear --vision_feature_layer -1
    vlmtune compose --vision tiny-siglip --llm tiny-qwen3 --output_dir composed-ps --projector pixel_shuffle
    vlmtune train --config configs/compose/llava15_stage1.yaml --model_local_path composed ...   # then train it

A part is a built-in tiny part (tiny-siglip, tiny-clip, tiny-qwen3, tiny-llama), a local folder, or a hub id that
is already in the local Hugging Face cache (nothing is downloaded). The parts' weights are copied exactly (tied
embeddings stay tied); only the projector is new. The output folder also holds the processor (the vision part's
image processor, the LLM's tokenizer with `<image>` added, a chat template), a generation config that stops on the
LLM's eos and end-of-turn, `compose.json` (what it was made from) and a `vlmtune_args.yaml` naming the
`llava-composed` family, so `vlmtune chat DIR` and `vlmtune merge` find it; train/preview/validate take
`--model_id llava-composed --model_local_path DIR`. `--projector pixel_shuffle` writes Idefics3's connector on a
native `Idefics3ForConditionalGeneration` instead (family `idefics3-composed`; vlmtune/compose/pixel_shuffle.py).
Design notes and the recipes: docs/compose.md.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import torch
import yaml

from vlmtune.arguments import CommandParser
from vlmtune.collators.llava_composed import template_reply_end
from vlmtune.compose import pixel_shuffle
from vlmtune.compose.parts import count_extra_tokens, load_llm, load_vision, resolve_part, set_image_size
from vlmtune.errors import ArgumentError
from vlmtune.loaders.llava import CHAT_TEMPLATE as VICUNA_TEMPLATE
from vlmtune.loaders.llava_onevision import CHAT_TEMPLATE as CHATML_TEMPLATE
from vlmtune.loaders.released import save_released

logger = logging.getLogger("vlmtune")

FAMILY_ID = "llava-composed"
IMAGE_TOKEN = "<image>"
# --projector -> LlavaConfig.projector_hidden_act (pixel_shuffle: Idefics3's, vlmtune/compose/pixel_shuffle.py)
PROJECTORS = {"mlp2x_gelu": "gelu", "linear": "linear", "pixel_shuffle": None}
TEMPLATES = ("auto", "own", "chatml", "vicuna")


# --- the pieces of the composed checkpoint ---------------------------------------------------------------------


def select_strategy(extra_tokens: int, requested: str, name: str) -> str:
    """LLaVA's feature selection: "default" drops the class token (CLIP, as LLaVA-1.5), "full" keeps every token."""
    strategy = requested if requested != "auto" else ("default" if extra_tokens == 1 else "full")
    if strategy == "default" and extra_tokens != 1:
        raise ArgumentError(
            f"--vision {name}: the tower writes {extra_tokens} tokens besides its patches; "
            "--vision_feature_select_strategy default drops exactly one (a class token); use full"
        )
    return strategy


def renders_image_parts(tokenizer: Any, template: str) -> bool:
    """Whether a chat template renders system/user/assistant turns with content parts and writes `<image>` for an
    image part (what LlavaProcessor expands): a probe conversation is rendered and checked."""
    messages = [
        {"role": "system", "content": [{"type": "text", "text": "SYSTEMPROBE"}]},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "USERPROBE"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "ASSISTANTPROBE"}]},
    ]
    try:
        text = tokenizer.apply_chat_template(messages, chat_template=template, tokenize=False)
    except Exception:  # a template that reads content as a string, or refuses a role
        return False
    order = [text.find(probe) for probe in ("SYSTEMPROBE", IMAGE_TOKEN, "USERPROBE", "ASSISTANTPROBE")]
    return text.count(IMAGE_TOKEN) == 1 and -1 not in order and order == sorted(order)


def choose_chat_template(tokenizer: Any, choice: str) -> tuple[str, str]:
    """(template, what it is): the LLM's own when it renders image parts as `<image>`, else ChatML when the
    tokenizer has its markers as single tokens, else the LLaVA-1.5 (Vicuna-style) format."""
    own = tokenizer.chat_template if isinstance(tokenizer.chat_template, str) else None
    if choice in ("auto", "own") and own and renders_image_parts(tokenizer, own):
        return own, "the LLM's own"
    if choice == "own":
        raise ArgumentError(
            "--chat_template own: the LLM's template "
            + ("does not render image parts as <image>" if own else "does not exist")
            + "; use auto, chatml or vicuna"
        )
    vocab = tokenizer.get_vocab()
    has_chatml = all(marker in vocab for marker in ("<|im_start|>", "<|im_end|>"))
    if choice == "chatml" and not has_chatml:
        raise ArgumentError("--chat_template chatml: the LLM's tokenizer has no <|im_start|>/<|im_end|> tokens")
    if choice in ("auto", "chatml") and has_chatml:
        return CHATML_TEMPLATE, "ChatML"
    if tokenizer.eos_token is None:
        raise ArgumentError("the LLaVA-1.5 format needs an eos token to end replies, and the LLM's tokenizer has none")
    return VICUNA_TEMPLATE, "LLaVA-1.5 (Vicuna-style)"


def fit_new_tokens(model: Any, tokenizer: Any) -> None:
    """Grow the embeddings for the added tokens (`<image>`, ...) only when they are past them (new rows = the mean
    of the existing rows, in the input embeddings and, when untied, the output head)."""
    rows = model.get_input_embeddings().weight.shape[0]
    if len(tokenizer) <= rows:
        logger.info(
            "      <image> is token %d, inside the LLM's %d embedding rows: no resize", tokenizer.image_token_id, rows
        )
        return
    model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    with torch.no_grad():
        for embedding in {id(e): e for e in (model.get_input_embeddings(), model.get_output_embeddings())}.values():
            embedding.weight[rows:] = embedding.weight[:rows].mean(dim=0)
    logger.info(
        "      <image> is token %d: embeddings grown from %d to %d rows (new rows: their mean)",
        tokenizer.image_token_id,
        rows,
        len(tokenizer),
    )


def build_model(tower: Any, llm: Any, config: Any, projector: str, seed: int) -> Any:
    """LlavaForConditionalGeneration holding the parts' own modules (weights untouched) and a fresh projector.

    The shell is built on the meta device, so no random copy of the parts is ever made; the projector is
    PyTorch's default nn.Linear initialisation, as LLaVA's. The linear projector is LLaVA's two layers with an
    identity activation and the second layer set to the identity: one linear map, as LLaVA-1's.
    """
    from transformers import LlavaForConditionalGeneration

    with torch.device("meta"):
        model = LlavaForConditionalGeneration(config)
    model.model.vision_tower = tower
    model.model.language_model = getattr(llm, llm.base_model_prefix)
    model.lm_head = llm.get_output_embeddings()
    torch.manual_seed(seed)
    with torch.device("cpu"):
        fresh = type(model.model.multi_modal_projector)(config)
    if projector == "linear":
        with torch.no_grad():
            fresh.linear_2.weight.copy_(torch.eye(fresh.linear_2.weight.shape[0]))
            fresh.linear_2.bias.zero_()
    model.model.multi_modal_projector = fresh.to(llm.dtype)
    left_on_meta = [name for name, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if left_on_meta:
        raise RuntimeError(f"composed model has uninitialised tensors: {left_on_meta[:5]}")
    return model


def save_checkpoint(model: Any, processor: Any, output_dir: Path) -> None:
    """The one place the composed checkpoint is written (model + processor): the weights in the released key
    layout of the model's class (`vlmtune.loaders.released`), which vLLM and older transformers load."""
    save_released(model, output_dir)
    processor.save_pretrained(output_dir)


# --- the command -----------------------------------------------------------------------------------------------


def compose(
    vision: str,
    llm: str,
    output_dir: str | Path,
    projector: str = "mlp2x_gelu",
    vision_feature_layer: int | None = None,
    vision_feature_select_strategy: str = "auto",
    image_size: int | None = None,
    chat_template: str = "auto",
    pixel_shuffle_factor: int = 2,
    seed: int = 0,
) -> Path:
    """Compose and save; every bad input ends in an ArgumentError naming the part or flag."""
    output_dir = Path(output_dir)
    shuffle = projector == "pixel_shuffle"
    check_options(projector, chat_template, vision_feature_layer, output_dir)

    logger.info("[1/6] vision part %s", vision)
    tower, vision_config, image_processor = load_vision(resolve_part(vision, "vision"), vision)
    layer = -2 if vision_feature_layer is None else vision_feature_layer
    if not -vision_config.num_hidden_layers <= layer < vision_config.num_hidden_layers:
        raise ArgumentError(f"--vision_feature_layer {layer}: the tower has {vision_config.num_hidden_layers} layers")
    if image_size:
        if image_size % vision_config.patch_size:
            raise ArgumentError(
                f"--image_size {image_size} is not a multiple of the patch size {vision_config.patch_size}"
            )
        set_image_size(image_processor, image_size)
    height, width, extra = count_extra_tokens(tower, image_processor, vision_config.patch_size, vision)
    if shuffle:
        strategy, layer = "full", -1
        image_tokens = pixel_shuffle.check_tower(vision_config, vision, height, pixel_shuffle_factor)
    else:
        strategy = select_strategy(extra, vision_feature_select_strategy, vision)
        image_tokens = (height // vision_config.patch_size) * (width // vision_config.patch_size) + extra
        image_tokens -= 1 if strategy == "default" else 0
    logger.info(
        "      %s tower, %dx%d px, patch %d, %d extra token(s) -> strategy %s, %d image tokens, feature layer %d",
        vision_config.model_type, height, width, vision_config.patch_size, extra, strategy, image_tokens, layer,
    )  # fmt: skip

    logger.info("[2/6] language part %s", llm)
    tokens = pixel_shuffle.tokenizer_kwargs() if shuffle else {"extra_special_tokens": {"image_token": IMAGE_TOKEN}}
    language_model, tokenizer = load_llm(resolve_part(llm, "llm"), llm, tokens)
    if shuffle:
        pixel_shuffle.warn_if_vllm_cannot_serve(language_model.config, llm)
        pixel_shuffle.add_row_col_tokens(tokenizer)
        template, template_kind = pixel_shuffle.CHAT_TEMPLATE, "Idefics3"
    else:
        template, template_kind = choose_chat_template(tokenizer, chat_template)
    logger.info("      %s, chat template: %s", type(language_model).__name__, template_kind)

    logger.info("[3/6] image tokens")
    fit_new_tokens(language_model, tokenizer)

    logger.info("[4/6] projector %s (seed %d)", projector, seed)
    if shuffle:
        model, processor = pixel_shuffle.build(
            tower, language_model, tokenizer, image_processor, height, pixel_shuffle_factor, image_tokens, seed
        )
    else:
        model, processor = llava_model_and_processor(
            tower, language_model, tokenizer, image_processor, projector, layer, strategy, extra, image_tokens, seed
        )
    processor.chat_template = template
    reply_end = template_reply_end(tokenizer, template)
    set_stop_tokens(model, tokenizer, reply_end)

    logger.info("[5/6] saving to %s", output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    save_checkpoint(model, processor, output_dir)
    recipe = {
        "vision": vision,
        "llm": llm,
        "projector": projector,
        "pixel_shuffle_factor": pixel_shuffle_factor if shuffle else None,
        "vision_feature_layer": layer,
        "vision_feature_select_strategy": strategy,
        "image_size": [height, width],
        "image_seq_length": image_tokens,
        "chat_template": template_kind,
        "reply_end": reply_end,
        "seed": seed,
    }
    (output_dir / "compose.json").write_text(json.dumps(recipe, indent=1) + "\n")
    # Names the family for `vlmtune chat DIR` / `vlmtune merge`, as a vlmtune train output does.
    family_id = pixel_shuffle.FAMILY_ID if shuffle else FAMILY_ID
    args = {"ModelArguments": {"model_id": family_id}}
    (output_dir / "vlmtune_args.yaml").write_text(yaml.safe_dump(args, sort_keys=False))
    logger.info("[6/6] composed %s parameters, the family is %s", f"{model.num_parameters():,}", family_id)
    return output_dir


def check_options(projector: str, chat_template: str, vision_feature_layer: int | None, output_dir: Path) -> None:
    if projector not in PROJECTORS:
        raise ArgumentError(f"--projector must be one of {', '.join(PROJECTORS)}, got {projector!r}")
    if chat_template not in TEMPLATES:
        raise ArgumentError(f"--chat_template must be one of {', '.join(TEMPLATES)}, got {chat_template!r}")
    if projector == "pixel_shuffle" and chat_template != "auto":
        raise ArgumentError("--projector pixel_shuffle writes Idefics3's prompt format; leave --chat_template auto")
    if projector == "pixel_shuffle" and vision_feature_layer not in (None, -1):
        raise ArgumentError(
            "--projector pixel_shuffle reads the tower's last layer (Idefics3); drop --vision_feature_layer"
        )
    if (output_dir / "config.json").exists():
        raise ArgumentError(f"--output_dir {output_dir} holds a checkpoint already; pick a new folder")


def llava_model_and_processor(
    tower: Any,
    llm: Any,
    tokenizer: Any,
    image_processor: Any,
    projector: str,
    layer: int,
    strategy: str,
    extra: int,
    image_tokens: int,
    seed: int,
) -> tuple[Any, Any]:
    from transformers import LlavaConfig, LlavaProcessor

    config = LlavaConfig(
        vision_config=tower.config,
        text_config=llm.config,
        image_token_id=tokenizer.image_token_id,
        projector_hidden_act=PROJECTORS[projector],
        multimodal_projector_bias=True,
        vision_feature_layer=layer,
        vision_feature_select_strategy=strategy,
        image_seq_length=image_tokens,
    )
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=tower.config.patch_size,
        vision_feature_select_strategy=strategy,
        num_additional_image_tokens=extra,
    )
    return build_model(tower, llm, config, projector, seed), processor


def set_stop_tokens(model: Any, tokenizer: Any, reply_end: str | None) -> None:
    """The LLM's generation config, stopping on its eos and on the template's end-of-turn."""
    stop_ids = [tokenizer.eos_token_id] + ([tokenizer.convert_tokens_to_ids(reply_end)] if reply_end else [])
    stop_ids = list(dict.fromkeys(i for i in stop_ids if i is not None))
    model.generation_config.eos_token_id = stop_ids
    model.generation_config.pad_token_id = (
        tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stop_ids[0]
    )


def build_parser() -> CommandParser:
    parser = CommandParser(
        prog="vlmtune compose", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--vision", required=True, help="Vision encoder: tiny-siglip, tiny-clip, a folder or hub id.")
    parser.add_argument("--llm", required=True, help="Causal LM: tiny-qwen3, tiny-llama, a folder or hub id.")
    parser.add_argument("--output_dir", required=True, help="New folder for the composed checkpoint.")
    parser.add_argument(
        "--projector",
        default="mlp2x_gelu",
        help="mlp2x_gelu (LLaVA-1.5: Linear-GELU-Linear), linear (LLaVA-1), or pixel_shuffle (Idefics3's "
        "connector, a native Idefics3ForConditionalGeneration: pixel_shuffle_factor**2 times fewer image tokens).",
    )
    parser.add_argument(
        "--vision_feature_layer",
        type=int,
        help="Tower layer whose features feed the LLM (default -2, as LLaVA; pixel_shuffle: always the last).",
    )
    parser.add_argument(
        "--vision_feature_select_strategy",
        choices=("auto", "default", "full"),
        default="auto",
        help="default: drop the class token; full: keep every token; auto: default iff the tower has one.",
    )
    parser.add_argument("--image_size", type=int, help="Image side in pixels (default: the image processor's).")
    parser.add_argument(
        "--chat_template",
        default="auto",
        help="auto (the LLM's own if it renders <image> parts, else ChatML, else LLaVA-1.5), own, chatml, vicuna.",
    )
    parser.add_argument(
        "--pixel_shuffle_factor", type=int, default=2, help="pixel_shuffle: side of the patch blocks folded into one."
    )
    parser.add_argument("--seed", type=int, default=0, help="Seed of the projector's initialisation.")
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    args = build_parser().parse_args(argv)
    output_dir = compose(**vars(args))
    family_id = pixel_shuffle.FAMILY_ID if args.projector == "pixel_shuffle" else FAMILY_ID
    print(f"composed model written to {output_dir}; train it: vlmtune train --model_id {family_id} "
          f"--model_local_path {output_dir} ... (configs/compose/)")  # fmt: skip
    return 0
