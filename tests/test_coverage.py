"""Every image-text-to-text type of the installed transformers is accounted for (vlmtune/coverage.py)."""

from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

from vlmtune import coverage
from vlmtune.supported_models import FAMILIES, UNSUPPORTED, main


def test_every_mapped_type_is_listed_once_and_nothing_else():
    mapped = set(MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES)
    listed = set(coverage.TRAINS) | set(coverage.NOT_SUPPORTED)
    assert not set(coverage.TRAINS) & set(coverage.NOT_SUPPORTED), "a type is both trained and not supported"
    assert not mapped - listed, (
        f"types of this transformers missing from vlmtune/coverage.py: {sorted(mapped - listed)}"
    )
    assert not listed - mapped, f"types that this transformers no longer maps: {sorted(listed - mapped)}"


def test_every_family_is_a_trained_type_and_states_its_template_source():
    trained = [family_id for families in coverage.TRAINS.values() for family_id in families]
    assert sorted(trained) == sorted(FAMILIES), "each family belongs to exactly one model type in coverage.TRAINS"
    for family_id, family in FAMILIES.items():
        assert family.template_source, f"{family_id}: say where its released template was read (template_source)"


def test_reasons_name_a_category_and_registry_records_exist():
    categories = {value for name, value in vars(coverage).items() if name.isupper() and isinstance(value, str)}
    for model_type, (category, detail) in coverage.NOT_SUPPORTED.items():
        assert category in categories and detail, model_type
        if detail.startswith(coverage.REGISTERED):
            assert detail.removeprefix(coverage.REGISTERED) in UNSUPPORTED, model_type
        assert coverage.reason(model_type).startswith(category + ": ")


def test_coverage_lists_every_type_with_counts(capsys):
    main(["--coverage"])
    out = capsys.readouterr().out
    rows = {line.split()[0] for line in out.splitlines() if line and not line.startswith(" ")}
    assert set(MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES) <= rows
    total = len(MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES)
    assert f"{total} types: {len(coverage.TRAINS)} train, {total - len(coverage.TRAINS)} not supported" in out
    assert "trains: qwen2-vl" in out and "not a chat VLM: maps to Mistral4ForCausalLM" in out


def test_the_probe_finds_what_the_table_says():
    """scripts/coverage_probe.py, run on three types, reports the facts their rows rest on."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "scripts" / "coverage_probe.py"
    spec = importlib.util.spec_from_file_location("coverage_probe", path)
    probe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(probe)
    mistral4 = probe.probe("mistral4")  # "maps to a text-only causal LM, no vision part, no processor"
    assert mistral4["built"] == "default" and mistral4["processor"] is None and not mistral4["vision"]
    assert probe.probe("pi0")["generates"] is False  # a robot policy: no generate()
    qwen4 = probe.probe("qwen4_exp")  # trains: the convention's layout, and the processor ships no template
    assert (qwen4["language"], qwen4["vision"]) == (["language_model"], ["visual"])
    assert qwen4["processor"] == "Qwen3VLProcessor" and not qwen4["default_chat_template"]


# --- issue 19, batch D ---
# Types once refused for their template alone (batch C's refusals: each builds, has the convention's parts and a
# processor naming its image token, and ships no template) and ERNIE 4.5 VL (whose one template copy is unusable) now
# train by convention, each tiny model with a labelled stand-in.
BATCH_D = {
    "hyperclovax_vision_v2": "hyperclovax-seed-think-32b",
    "inkling2": "inkling-2-small",
    "minimax_m3_vl": "minimax-m3",
    "ernie4_5_vl_moe": "ernie-4.5-vl-28b-a3b",
    "granite4_vision": "granite-vision-4.1-4b",
}
TEMPLATE_ONLY = ("hyperclovax_vision_v2", "inkling2", "minimax_m3_vl")


def test_batch_d_types_train_by_convention_with_a_labelled_stand_in():
    import importlib.util
    from pathlib import Path

    from vlmtune.supported_models import find_unsupported, get_model

    path = Path(__file__).resolve().parent.parent / "scripts" / "coverage_probe.py"
    spec = importlib.util.spec_from_file_location("coverage_probe", path)
    probe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(probe)
    for model_type in TEMPLATE_ONLY:
        found = probe.probe(model_type)
        assert found["built"] == "default" and found["language"] == ["language_model"], model_type
        assert found["image_token_attr"] and not found["default_chat_template"], model_type
    for model_type, model_id in BATCH_D.items():
        entry = get_model(model_id)
        assert entry.family_id in coverage.TRAINS[model_type] and model_type not in coverage.NOT_SUPPORTED
        assert find_unsupported(entry.hf_path) is None
        family = entry.family
        assert {"reply_end", "system_prompt", "multi_turn"} <= set(family.derived), family.family_id
        assert family.template_source.startswith("derived and checked at load (tiny model: stand-in ")
        assert "searched 2026-12-07" in family.template_source


# Issue 19, batch B: types once refused because their released template could not be read offline now train by
# convention: the registry no longer refuses their checkpoints, each record derives from the checkpoint's files what
# the template decides, and its template source says that the tiny model's template is a labelled stand-in.
BATCH_B = {
    "aya_vision": "aya-vision-8b",
    "cohere2_vision": "command-a-vision-07-2025",
    "glm46v": "glm-4.6v-flash",
    "glm4v_moe": "glm-4.5v",
    "glm5_next": "glm-5.3-flash",
}


def test_batch_b_types_train_by_convention_with_a_labelled_stand_in():
    from vlmtune.supported_models import find_unsupported, get_model

    for model_type, model_id in BATCH_B.items():
        entry = get_model(model_id)
        assert entry.family_id in coverage.TRAINS[model_type] and model_type not in coverage.NOT_SUPPORTED
        assert find_unsupported(entry.hf_path) is None, f"{entry.hf_path} is still refused"
        family = entry.family
        assert {"modules", "system_prompt", "multi_turn"} <= set(family.derived), family.family_id
        assert family.template_source.startswith("derived and checked at load (tiny model: stand-in ")
        assert "searched 2026-12-07" in family.template_source
