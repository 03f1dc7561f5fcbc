"""`vlmtune compose`: exact copies of the parts, tied embeddings, the chat template choice, refusals, and the
LLaVA stages on a composed model (only the projector learns in stage 1; stage 2 starts from stage 1's folder)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from transformers import (
    AutoModelForCausalLM,
    AutoModelForImageTextToText,
    AutoProcessor,
    LlavaForConditionalGeneration,
)

from tests.test_masking import conversation, encode
from tests.test_train import digits_data  # noqa: F401  (fixture)
from vlmtune.arguments import ModelArguments, parse_args
from vlmtune.collators.base import IGNORE_INDEX
from vlmtune.collators.llava_composed import ComposedCollator
from vlmtune.compose.build import compose
from vlmtune.core.modeling import set_trainable
from vlmtune.datasets import Sample
from vlmtune.errors import ArgumentError
from vlmtune.loaders.llava_composed import TINY_PATCH_SIZE, tiny_part_path
from vlmtune.supported_models import get_family
from vlmtune.train import train

CONFIGS = Path(__file__).resolve().parent.parent / "configs" / "compose"
SMALL = {"hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 2}  # hand-built parts for refusals


@pytest.fixture(scope="module")
def siglip_qwen3(tmp_path_factory) -> Path:
    return compose("tiny-siglip", "tiny-qwen3", tmp_path_factory.mktemp("composed") / "sq")


@pytest.fixture(scope="module")
def clip_llama(tmp_path_factory) -> Path:
    return compose("tiny-clip", "tiny-llama", tmp_path_factory.mktemp("composed") / "cl")


def state(module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach() for name, tensor in module.state_dict().items()}


@pytest.mark.parametrize(("vision", "llm"), [("tiny-siglip", "tiny-qwen3"), ("tiny-clip", "tiny-llama")])
def test_parts_are_copied_bit_for_bit(vision, llm, tmp_path):
    from transformers import MODEL_MAPPING, AutoConfig

    folder = compose(vision, llm, tmp_path / "c")
    model = LlavaForConditionalGeneration.from_pretrained(folder)
    vision_path, llm_path = tiny_part_path(vision), tiny_part_path(llm)
    tower = MODEL_MAPPING[type(AutoConfig.from_pretrained(vision_path))].from_pretrained(vision_path)
    assert state(model.model.vision_tower).keys() == state(tower).keys()
    for name, tensor in state(tower).items():
        assert torch.equal(state(model.model.vision_tower)[name], tensor), name

    original = AutoModelForCausalLM.from_pretrained(llm_path)
    rows = original.get_input_embeddings().weight.shape[0]
    for name, tensor in state(original.model).items():
        copied = state(model.model.language_model)[name]
        if name == "embed_tokens.weight":  # <image> was past the tiny vocabulary: one row added, the mean
            assert torch.equal(copied[:rows], tensor) and copied.shape[0] == rows + 1
            assert torch.allclose(copied[rows], tensor.mean(dim=0))
        else:
            assert torch.equal(copied, tensor), name
    head = model.lm_head.weight.detach()
    assert torch.equal(head[:rows], original.lm_head.weight.detach())
    assert torch.allclose(head[rows], original.lm_head.weight.detach().mean(dim=0))


@pytest.mark.parametrize("kind", ["siglip", "clip"])
def test_a_two_tower_checkpoint_gives_its_vision_half_bit_for_bit(kind, tmp_path):
    """google/siglip-so400m-patch14-384 and openai/clip-vit-large-patch14-336 are saved with both towers."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, SiglipConfig, SiglipImageProcessor, SiglipModel

    config_class, model_class = {"siglip": (SiglipConfig, SiglipModel), "clip": (CLIPConfig, CLIPModel)}[kind]
    layers = {"num_hidden_layers": 2, **SMALL}
    torch.manual_seed(1)
    both = model_class(
        config_class(
            text_config={"vocab_size": 50, **layers}, vision_config={"image_size": 32, "patch_size": 8, **layers}
        )
    )
    both.save_pretrained(tmp_path / kind)
    processor = (
        SiglipImageProcessor(size={"height": 32, "width": 32})
        if kind == "siglip"
        else CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    )
    processor.save_pretrained(tmp_path / kind)
    model = LlavaForConditionalGeneration.from_pretrained(compose(str(tmp_path / kind), "tiny-qwen3", tmp_path / "c"))
    expected = {
        k: v for k, v in state(both.vision_model).items() if not k.startswith("head.")
    }  # SigLIP's pooling head is left out
    assert state(model.model.vision_tower).keys() == expected.keys()
    assert all(torch.equal(state(model.model.vision_tower)[k], v) for k, v in expected.items())


def test_tied_embeddings_stay_tied_and_untied_stay_untied(siglip_qwen3, clip_llama):
    tied = LlavaForConditionalGeneration.from_pretrained(siglip_qwen3)
    assert tied.config.tie_word_embeddings
    assert tied.lm_head.weight.data_ptr() == tied.model.language_model.embed_tokens.weight.data_ptr()
    untied = LlavaForConditionalGeneration.from_pretrained(clip_llama)
    assert untied.lm_head.weight.data_ptr() != untied.model.language_model.embed_tokens.weight.data_ptr()


def test_config_follows_the_tower(siglip_qwen3, clip_llama):
    siglip = AutoModelForImageTextToText.from_pretrained(siglip_qwen3).config
    clip = AutoModelForImageTextToText.from_pretrained(clip_llama).config
    # SigLIP has no class token: every patch feature; CLIP's class token is dropped, as LLaVA-1.5 does.
    assert (siglip.vision_feature_select_strategy, siglip.image_seq_length) == ("full", (32 // TINY_PATCH_SIZE) ** 2)
    assert (clip.vision_feature_select_strategy, clip.image_seq_length) == ("default", 16)
    assert siglip.vision_feature_layer == clip.vision_feature_layer == -2
    assert siglip.projector_hidden_act == "gelu"


@pytest.mark.parametrize("folder", ["siglip_qwen3", "clip_llama"])
def test_processor_expands_one_image_into_the_models_feature_count(folder, request, images):
    from PIL import Image

    path = request.getfixturevalue(folder)
    model = AutoModelForImageTextToText.from_pretrained(path)
    processor = AutoProcessor.from_pretrained(path)
    text = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Which digit?"}]}],
        add_generation_prompt=True,
    )
    inputs = processor(text=[text], images=[Image.open(images[0]).convert("RGB")], return_tensors="pt")
    assert (inputs["input_ids"] == model.config.image_token_id).sum() == model.config.image_seq_length
    assert torch.isfinite(model(**inputs).logits).all()


def test_chat_template_choice(siglip_qwen3, clip_llama, tmp_path):
    import json

    # tiny-qwen3's own template reads content as a string (as Qwen3's does): ChatML with <image>.
    assert json.loads((siglip_qwen3 / "compose.json").read_text())["chat_template"] == "ChatML"
    # tiny-llama has no template and no ChatML tokens: the LLaVA-1.5 format, eos appended to replies.
    assert json.loads((clip_llama / "compose.json").read_text())["chat_template"] == "LLaVA-1.5 (Vicuna-style)"
    # An LLM whose own template renders system/user/assistant and image parts as <image> keeps it.
    from transformers import AutoTokenizer

    from vlmtune.loaders.llava_interleave import CHAT_TEMPLATE

    llm = tmp_path / "llm"
    AutoModelForCausalLM.from_pretrained(tiny_part_path("tiny-qwen3")).save_pretrained(llm)
    tokenizer = AutoTokenizer.from_pretrained(tiny_part_path("tiny-qwen3"))
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(llm)
    own = compose("tiny-siglip", str(llm), tmp_path / "own")
    assert json.loads((own / "compose.json").read_text())["chat_template"] == "the LLM's own"
    assert AutoProcessor.from_pretrained(own).chat_template == CHAT_TEMPLATE
    with pytest.raises(ArgumentError, match="--chat_template chatml: the LLM's tokenizer has no"):
        compose("tiny-clip", "tiny-llama", tmp_path / "x", chat_template="chatml")


@pytest.mark.parametrize(
    ("folder", "reply_format", "stop_tokens"),
    [("siglip_qwen3", "{reply}<|im_end|>", ["<|im_end|>"]), ("clip_llama", " {reply}</s>", ["</s>"])],
)
def test_supervised_ids_follow_each_composed_template(folder, reply_format, stop_tokens, request, images):
    path = request.getfixturevalue(folder)
    processor = AutoProcessor.from_pretrained(path)
    family = get_family("llava-composed")
    collator = family.collator(processor, family.reply_end)
    assert isinstance(collator, ComposedCollator)
    sample = Sample(conversation("<image>\nWhich digit?", "7", "Sure?", "Yes."), images=[images[0]], source="s")
    features = encode(collator, sample)
    supervised = features["input_ids"][features["labels"] != IGNORE_INDEX].tolist()
    tokenizer = processor.tokenizer
    expected = [
        i for r in ("7", "Yes.") for i in tokenizer.encode(reply_format.format(reply=r), add_special_tokens=False)
    ]
    assert supervised == expected
    generation = AutoModelForImageTextToText.from_pretrained(path).generation_config
    assert generation.eos_token_id == tokenizer.convert_tokens_to_ids(stop_tokens)


def test_linear_projector_is_one_linear_map(tmp_path):
    model = LlavaForConditionalGeneration.from_pretrained(
        compose("tiny-siglip", "tiny-qwen3", tmp_path / "lin", projector="linear")
    )
    projector = model.model.multi_modal_projector
    features = torch.randn(3, model.config.vision_config.hidden_size)
    assert model.config.projector_hidden_act == "linear"
    assert torch.allclose(projector(features), projector.linear_1(features), atol=1e-6)


def tiny_folder(folder: Path, model) -> str:
    model.save_pretrained(folder)
    return str(folder)


def test_refusals_name_the_part_and_the_reason(tmp_path):
    from transformers import Qwen3Config, Qwen3Model, Siglip2VisionConfig, Siglip2VisionModel

    naflex = tiny_folder(
        tmp_path / "naflex",
        Siglip2VisionModel(Siglip2VisionConfig(num_hidden_layers=1, **SMALL)),
    )
    with pytest.raises(ArgumentError, match="NaFlex towers need pixel_attention_mask and spatial_shapes"):
        compose(naflex, "tiny-qwen3", tmp_path / "a")
    config = Qwen3Config(vocab_size=64, num_hidden_layers=1, num_key_value_heads=1, head_dim=16, **SMALL)
    no_head = tiny_folder(tmp_path / "no_head", Qwen3Model(config))
    with pytest.raises(ArgumentError, match="Qwen3Model has no causal LM head"):
        compose("tiny-siglip", no_head, tmp_path / "b")
    with pytest.raises(ArgumentError, match="'no-such/model' is not a built-in tiny part"):
        compose("tiny-siglip", "no-such/model", tmp_path / "c")
    with pytest.raises(ArgumentError, match="does not run on 64x64 images"):
        compose("tiny-siglip", "tiny-qwen3", tmp_path / "d", image_size=64)
    with pytest.raises(ArgumentError, match="--projector must be one of"):
        compose("tiny-siglip", "tiny-qwen3", tmp_path / "e", projector="mlp3x")


def test_cli_refusal_is_one_line_with_exit_status_2(tmp_path, capsys):
    from vlmtune.apps.cli import main as cli_main

    assert cli_main(["compose", "--vision", "tiny-sigclip", "--llm", "tiny-qwen3", "--output_dir", str(tmp_path)]) == 2
    error = capsys.readouterr().err.strip()
    assert (
        error.startswith("vlmtune compose: error: --vision 'tiny-sigclip' is not a built-in tiny part")
        and "\n" not in error
    )


def test_dinov2_is_composed_with_a_warning_that_vllm_cannot_serve_it(tmp_path, caplog):
    from transformers import BitImageProcessor, Dinov2Config, Dinov2Model

    tower = tmp_path / "dinov2"
    Dinov2Model(Dinov2Config(num_hidden_layers=2, image_size=32, patch_size=8, **SMALL)).save_pretrained(tower)
    BitImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(tower)
    with caplog.at_level(logging.WARNING, logger="vlmtune"):
        folder = compose(str(tower), "tiny-qwen3", tmp_path / "c")
    assert "vLLM's Llava cannot serve it" in caplog.text
    config = AutoModelForImageTextToText.from_pretrained(folder).config
    assert (config.vision_feature_select_strategy, config.image_seq_length) == ("default", 16)  # class token dropped


def stage_argv(recipe: str, model_dir: Path, data_path: str, output_dir: Path) -> list[str]:
    """A recipe file plus what a short CPU run needs; everything else as the recipe says."""
    return [
        "--config", str(CONFIGS / recipe), "--model_local_path", str(model_dir), "--data_path", data_path,
        "--output_dir", str(output_dir), "--model_dtype", "float32", "--bf16", "false", "--use_cpu", "true",
        "--activation_checkpointing", "false", "--per_device_train_batch_size", "4", "--gradient_accumulation_steps",
        "1", "--max_steps", "2", "--disable_tqdm", "true", "--learning_rate", "1e-2",
    ]  # fmt: skip


def test_stage1_trains_the_projector_only_then_stage2_starts_from_its_folder(siglip_qwen3, digits_data, tmp_path):  # noqa: F811
    before = state(LlavaForConditionalGeneration.from_pretrained(siglip_qwen3))
    stage1 = tmp_path / "stage1"
    trainer = train(*parse_args(stage_argv("llava15_stage1.yaml", siglip_qwen3, digits_data, stage1)))
    trainable = {n for n, p in trainer.model.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("model.multi_modal_projector.") for n in trainable)
    after = state(LlavaForConditionalGeneration.from_pretrained(stage1))
    assert after.keys() == before.keys()
    for name in before:
        changed = not torch.equal(before[name], after[name])
        assert changed == name.startswith("model.multi_modal_projector."), name

    # Stage 2 from stage 1's folder with one flag; its output reloads with plain transformers, same greedy tokens.
    stage2 = tmp_path / "stage2"
    trainer = train(*parse_args(stage_argv("llava15_stage2_full.yaml", stage1, digits_data, stage2)))
    reloaded = AutoModelForImageTextToText.from_pretrained(stage2)
    processor = AutoProcessor.from_pretrained(stage2)
    from PIL import Image

    text = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Which digit?"}]}],
        add_generation_prompt=True,
    )
    inputs = processor(text=[text], images=[Image.new("RGB", (32, 32), "white")], return_tensors="pt")
    trained = trainer.model.eval().generate(**inputs, max_new_tokens=5, do_sample=False)
    assert torch.equal(reloaded.generate(**inputs, max_new_tokens=5, do_sample=False), trained)


def test_projector_alone_gets_gradients_when_llm_and_vision_are_frozen(siglip_qwen3, images):
    family = get_family("llava-composed")
    model, processor = family.load(str(siglip_qwen3))
    args = ModelArguments(model_id="llava-composed", llm_mode="frozen", vision_mode="frozen", train_projector=True)
    model = set_trainable(model, family.modules, args, gradient_checkpointing=False)
    collator = family.collator(processor, family.reply_end)
    batch = collator(
        [encode(collator, Sample(conversation("<image>\nWhich digit?", "7"), images=[images[0]], source="s"))]
    )
    model(**batch).loss.backward()
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert with_grad == {n for n, _ in model.named_parameters() if n.startswith("model.multi_modal_projector.")}


def test_lora_stage_merges_and_chats_from_the_folder(siglip_qwen3, digits_data, tmp_path, capsys, images):  # noqa: F811
    from vlmtune.apps.cli import main as cli_main

    lora = tmp_path / "lora"
    train(
        *parse_args(
            stage_argv("llava15_stage2_lora.yaml", siglip_qwen3, digits_data, lora)
            + ["--lora_r", "4", "--lora_alpha", "8"]
        )
    )
    assert (lora / "adapter_model.safetensors").exists()
    assert cli_main(["merge", str(lora), str(tmp_path / "merged")]) == 0
    capsys.readouterr()
    assert (
        cli_main(
            [
                "chat",
                str(tmp_path / "merged"),
                "--image",
                images[0],
                "--prompt",
                "Which digit?",
                "--max_new_tokens",
                "3",
            ]
        )
        == 0
    )
    assert len(capsys.readouterr().out.splitlines()) == 1  # the reply (a random tiny model's)
    # The composed folder itself chats too: compose wrote a vlmtune_args.yaml naming the family.
    assert (
        cli_main(
            ["chat", str(siglip_qwen3), "--image", images[0], "--prompt", "Which digit?", "--max_new_tokens", "2"]
        )
        == 0
    )


def test_llava_composed_without_a_folder_says_what_to_pass():
    from vlmtune.core.modeling import checkpoint_path
    from vlmtune.supported_models import get_model

    with pytest.raises(ArgumentError, match="pass --model_local_path with a folder written by vlmtune compose"):
        checkpoint_path(get_model("llava-composed"))


@pytest.mark.slow
def test_demo_compose_reaches_ninety_percent_after_stage_two(tmp_path, capsys):
    """make test-slow: the two-stage demo (~65 s of CPU, 3.5-6.5 min on 2 busy cores; 67% after stage 1, 95% after)."""
    from vlmtune.apps import demo_compose

    assert demo_compose.main(["--output_dir", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "held-out accuracy after stage 1:" in printed
    assert float(printed.split("after stage 2:")[1].split("%")[0]) >= 90.0


# --- the pixel-shuffle connector (Idefics3's class) ------------------------------------------------------------


def test_pixel_shuffle_keeps_the_parts_and_cuts_image_tokens_by_the_factor_squared(
    siglip_qwen3, tmp_path, images, caplog
):
    from PIL import Image
    from transformers import Idefics3ForConditionalGeneration, SiglipVisionModel

    with caplog.at_level(logging.WARNING, logger="vlmtune"):
        folder = compose("tiny-siglip", "tiny-qwen3", tmp_path / "ps", projector="pixel_shuffle")
    assert "vLLM's Idefics3 cannot serve it" in caplog.text  # a Qwen3 LLM; Llama ones are served
    model = Idefics3ForConditionalGeneration.from_pretrained(folder)
    tower = SiglipVisionModel.from_pretrained(tiny_part_path("tiny-siglip"))
    assert all(torch.equal(state(model.model.vision_model)[k], v) for k, v in state(tower).items())
    assert state(model.model.vision_model).keys() == state(tower).keys()
    llava = LlavaForConditionalGeneration.from_pretrained(siglip_qwen3)
    for name, tensor in state(llava.model.language_model).items():  # the same copy of the LLM as LLaVA's
        copied = state(model.model.text_model)[name]
        assert (
            torch.equal(copied[: tensor.shape[0]], tensor)
            if name == "embed_tokens.weight"
            else torch.equal(copied, tensor)
        )
    assert model.lm_head.weight.data_ptr() == model.model.text_model.embed_tokens.weight.data_ptr()  # still tied

    processor = AutoProcessor.from_pretrained(folder)
    text = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Which digit?"}]}],
        add_generation_prompt=True,
    )
    assert text == "User:<image>Which digit?<end_of_utterance>\nAssistant:"
    inputs = processor(text=[text], images=[[Image.open(images[0]).convert("RGB")]], return_tensors="pt")
    image_tokens = (inputs["input_ids"] == model.config.image_token_id).sum().item()
    assert image_tokens * 4 == llava.config.image_seq_length  # factor 2: 4x fewer than LLaVA's projector
    assert torch.isfinite(model(**inputs).logits).all()
    stop = processor.tokenizer.convert_tokens_to_ids(["<|im_end|>", "<end_of_utterance>"])
    assert model.generation_config.eos_token_id == stop


def test_pixel_shuffle_refusals(tmp_path):
    with pytest.raises(ArgumentError, match="a clip_vision_model tower needs --projector mlp2x_gelu or linear"):
        compose("tiny-clip", "tiny-qwen3", tmp_path / "a", projector="pixel_shuffle")
    with pytest.raises(ArgumentError, match="4x4 patches per image do not split into 3x3 blocks"):
        compose("tiny-siglip", "tiny-qwen3", tmp_path / "b", projector="pixel_shuffle", pixel_shuffle_factor=3)
    with pytest.raises(ArgumentError, match="reads the tower's last layer"):
        compose("tiny-siglip", "tiny-qwen3", tmp_path / "c", projector="pixel_shuffle", vision_feature_layer=-2)


def test_pixel_shuffle_stage1_trains_the_connector_only(digits_data, tmp_path):  # noqa: F811
    folder = compose("tiny-siglip", "tiny-qwen3", tmp_path / "ps", projector="pixel_shuffle")
    argv = stage_argv("llava15_stage1.yaml", folder, digits_data, tmp_path / "stage1") + [
        "--model_id",
        "idefics3-composed",
    ]
    trainer = train(*parse_args(argv))
    trainable = {n for n, p in trainer.model.named_parameters() if p.requires_grad}
    assert trainable == {"model.connector.modality_projection.proj.weight"}


def test_the_compose_demo_finds_the_repositorys_recipes():
    """The demo reads configs/compose/ from the repository, wherever its module sits (a fast guard for the slow
    demo test below: the layout move once sent it to vlmtune/configs/)."""
    from vlmtune.apps import demo_compose

    for recipe in ("llava15_stage1.yaml", "llava15_stage2_full.yaml"):
        assert (demo_compose.CONFIGS / recipe) == CONFIGS / recipe
        assert (demo_compose.CONFIGS / recipe).is_file()
