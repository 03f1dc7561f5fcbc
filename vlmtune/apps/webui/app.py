"""The gradio page: one tab per command, each built by one small function (`tabs()`).

A tab function takes `fields`, the shared dict of the page's components (key -> component), adds the components
it renders (the Model tab renders model_id, the Data tab data_path ..., the GRPO tab its own fields under
`grpo_` keys) and wires its buttons. Adding a command's tab is one more function and one line in `tabs()`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import html
import io
import shutil
import subprocess
import sys
from pathlib import Path

import gradio as gr

from vlmtune.apps.webui import workspace
from vlmtune.apps.webui.forms import (
    COMPOSE_FIELDS,
    DATA_FIELDS,
    MODEL_FIELDS,
    FormField,
    form_argv,
    form_fields,
    list_text,
)

CSS = """
mark.trained { background: #b7ebc0; color: #0b4d17; border-radius: 3px; padding: 0 1px; }
span.media { background: #dde3f7; color: #27306b; border-radius: 3px; padding: 0 2px; font-size: 0.85em; }
pre.sample { white-space: pre-wrap; font-size: 0.9em; border: 1px solid #ddd; padding: 8px; border-radius: 6px; }
"""


def field_component(spec: FormField, **overrides) -> gr.components.Component:
    """A form control for one argument: checkbox, dropdown, number or text, with its default and help text."""
    label = spec.name + (" (required)" if spec.required else "")
    common = {"label": label, "info": spec.help, "elem_id": f"field-{spec.name}", **overrides}
    if spec.kind == "bool":
        return gr.Checkbox(value=bool(spec.default), **common)
    if spec.kind == "choice":
        return gr.Dropdown(
            choices=list(spec.choices), value=None if spec.default is None else str(spec.default), **common
        )
    if spec.kind in ("int", "float") and spec.default is not None:  # None must stay None: an empty text box
        return gr.Number(value=spec.default, precision=0 if spec.kind == "int" else None, **common)
    if spec.kind == "list":  # several words in one text, e.g. "format accuracy"
        return gr.Textbox(value=list_text(spec.default), **common)
    return gr.Textbox(value=spec.default or "", **common)


def run_cli(argv: list[str]) -> tuple[int, str]:
    """A vlmtune command run in this process, with what it prints: its stdout, and its stderr when it fails
    (the one-line error; a successful run's stderr holds only progress bars, e.g. of a tiny model's build)."""
    from vlmtune.apps.cli import main as cli_main

    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            code = cli_main(argv)
        except SystemExit as exit_:  # argparse's usage errors
            code = exit_.code if isinstance(exit_.code, int) else 2
    return code, stdout.getvalue() + (stderr.getvalue() if code else "")


def run_command(argv: list[str]) -> str:
    """A vlmtune command run as a separate process (long work that logs), with its output and exit status."""
    done = subprocess.run(
        [sys.executable, "-m", "vlmtune", *argv], capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    return f"$ vlmtune {' '.join(argv)}\n{done.stdout}{done.stderr}(exit status {done.returncode})"


# --- Model ---------------------------------------------------------------------------------------------------


def registry_rows() -> list[list[str]]:
    from vlmtune.supported_models import MODELS, capability_cell

    rows = []
    for entry in sorted(MODELS.values(), key=lambda m: (m.family_id, m.model_id)):
        accepts = [
            capability_cell(entry.family, name) for name in ("multi_image", "video", "system_prompt", "multi_turn")
        ]
        rows.append([entry.model_id, entry.family_id, entry.hf_path, *accepts])
    return rows


def model_summary(model_id: str | None) -> str:
    from vlmtune.supported_models import MODELS

    if not model_id or model_id not in MODELS:
        return "Pick a registered model id, or enter a local checkpoint folder with its model id."
    entry = MODELS[model_id]
    family = entry.family
    notes = f"\n\n{family.notes}" if family.notes else ""
    if family.derived:  # a conventional family: what a sample may hold is read from the checkpoint's own template
        line = f"**{model_id}**: family `{entry.family_id}`, checkpoint `{entry.hf_path}`; accepts what its chat "
        return line + f"template renders (`vlmtune check {model_id}` lists it).{notes}"
    accepts = [name for name, flag in (("several images", family.multi_image), ("video", family.video)) if flag]
    accepts += ["a system prompt"] if family.system_prompt else []
    accepts += ["several turns"] if family.multi_turn else ["one question and one answer"]
    line = f"**{model_id}**: family `{entry.family_id}`, checkpoint `{entry.hf_path}`; accepts {', '.join(accepts)}."
    return line + notes


def output_model_id(folder: str) -> tuple[str | None, str]:
    """A vlmtune output folder's model id (from its vlmtune_args.yaml), and a line saying what was found."""
    from vlmtune.core.outputs import run_model_args
    from vlmtune.errors import ArgumentError

    try:
        folder = folder and workspace.inside(folder, "--model_local_path")
    except ArgumentError as error:
        return None, str(error)
    if not folder or not Path(folder).is_dir():
        return None, f"{folder}: no such folder" if folder else ""
    model_id = run_model_args(folder).get("model_id")
    if not model_id:
        return None, f"{folder}: no vlmtune_args.yaml; pick the model id it was trained from"
    return model_id, f"{folder}: an output of {model_id}"


COMPOSED: list[str] = []  # folders `vlmtune compose` wrote from this page, newest last


def composed_folders(root: str | Path | None = None) -> list[str]:
    """Composed models to offer: the folders composed from this page, and those directly in `root` (default: the
    workspace root, vlmtune.apps.webui.workspace), each a folder whose vlmtune_args.yaml names a composed family."""
    from vlmtune.compose.build import FAMILY_ID
    from vlmtune.compose.pixel_shuffle import FAMILY_ID as PIXEL_SHUFFLE_FAMILY_ID
    from vlmtune.core.outputs import run_model_args

    folder = Path(root or workspace.root())
    candidates = [*COMPOSED, *sorted(str(path) for path in folder.iterdir() if path.is_dir())]
    found: dict[Path, str] = {}  # each folder once (by its absolute path), as first named
    for folder in candidates:
        if Path(folder).is_dir() and run_model_args(folder).get("model_id") in (FAMILY_ID, PIXEL_SHUFFLE_FAMILY_ID):
            found.setdefault(Path(folder).resolve(), folder)
    return list(found.values())


def model_tab(fields: dict) -> None:
    from vlmtune.supported_models import MODELS

    model_spec, local_spec = form_fields(MODEL_FIELDS)
    # The registered ids as the choices of the model_id field.
    model_spec = dataclasses.replace(model_spec, kind="choice", choices=tuple(sorted(MODELS)))
    fields["model_id"] = field_component(model_spec)
    summary = gr.Markdown(model_summary(None), elem_id="model-summary")
    fields["model_local_path"] = field_component(local_spec)
    found = gr.Markdown()
    with gr.Row():
        fields["composed"] = gr.Dropdown(
            choices=composed_folders(),
            value=None,
            label="... or a composed model (Compose tab, or a folder here)",
            info="A vlmtune compose output: picking it fills model_local_path and its family's model id.",
            elem_id="composed",
        )
        find = gr.Button("Find composed models", scale=0)
    gr.Dataframe(
        value=registry_rows(),
        headers=["model id", "family", "checkpoint", "multi-image", "video", "system prompt", "multi-turn"],
        label="Registered models (vlmtune models)",
        interactive=False,
        max_height=420,
        column_widths=["19%", "11%", "28%", "11%", "7%", "13%", "11%"],
    )
    fields["model_id"].change(model_summary, fields["model_id"], summary)

    def from_folder(folder: str, current: str | None):
        model_id, line = output_model_id(folder)
        return model_id or current, line

    fields["model_local_path"].blur(
        from_folder, [fields["model_local_path"], fields["model_id"]], [fields["model_id"], found]
    )
    fields["composed"].input(
        lambda folder, current: (folder, *from_folder(folder, current)),
        [fields["composed"], fields["model_id"]],
        [fields["model_local_path"], fields["model_id"], found],
    )
    find.click(lambda: gr.update(choices=composed_folders()), None, fields["composed"])


# --- Data ----------------------------------------------------------------------------------------------------


def uploaded_data(files: list[str] | None) -> str:
    """Uploaded files (a data file and its images) copied into one new folder under the workspace root
    (`webui_uploads/`); the data file's path."""
    if not files:
        return ""
    folder = workspace.upload_folder()
    data = ""
    for path in files:
        target = folder / Path(path).name
        shutil.copy(path, target)
        if target.suffix in (".json", ".jsonl"):
            data = str(target)
    return data


def data_argv(values: dict) -> list[str]:
    argv = []
    for name, value in values.items():
        if value not in (None, ""):
            argv += [f"--{name}", str(int(value) if isinstance(value, float) and value.is_integer() else value)]
    return argv


def validate_report(model_id, data_path, eval_data_path, image_folder, model_max_length) -> str:
    if not data_path:
        return "Enter a data path or upload a data file first."
    values = dict(data_path=data_path, eval_data_path=eval_data_path, image_folder=image_folder)
    values.update(model_max_length=model_max_length, model_id=model_id)
    problem = workspace.argv_refused(data_argv(values), "validate")
    if problem:
        return problem
    code, text = run_cli(["validate", *data_argv(values)])
    return f"$ vlmtune validate {' '.join(data_argv(values))}\n{text}(exit status {code})"


def preview_html(model_id, data_path, image_folder, model_max_length, num_samples) -> str:
    from vlmtune.apps.preview import PreviewArguments, counts, encoded_samples, render_html
    from vlmtune.arguments import DataArguments

    if not (model_id and data_path):
        return "<p>Pick a model (Model tab) and a data file first.</p>"
    text = ""
    try:
        workspace.check_argv_paths(data_argv(dict(data_path=data_path, image_folder=image_folder)))
        data_args = DataArguments(data_path=data_path, image_folder=image_folder or None)
        data_args.model_max_length = int(model_max_length or data_args.model_max_length)
        args = PreviewArguments(model_id=model_id, num_samples=int(num_samples))
        tokenizer, results = encoded_samples(data_args, args)
    except Exception as error:  # the CLI's one-line errors (ArgumentError, DataError, unknown id ...)
        return f'<p class="error">error: {html.escape(str(error))}</p>'
    for source, encoded in results:
        if isinstance(encoded, Exception):
            text += f'<p class="error">error: {html.escape(str(encoded))}</p>'
            continue
        header = ", ".join(f"{value} {name}" for name, value in counts(encoded["runs"]).items())
        text += f"<h4>{html.escape(source)}: {header}</h4>"
        text += f'<pre class="sample">{render_html(encoded["runs"], tokenizer)}</pre>'
    return text


def data_tab(fields: dict) -> None:
    for spec in form_fields(DATA_FIELDS):
        fields[spec.name] = field_component(spec)
    upload = gr.File(label="... or upload a data file with its images", file_count="multiple", type="filepath")
    upload.upload(uploaded_data, upload, fields["data_path"])
    with gr.Row():
        validate_button = gr.Button("Validate (vlmtune validate)")
        num_samples = gr.Number(value=3, precision=0, label="samples to preview", minimum=1)
        preview_button = gr.Button("Preview (vlmtune preview)", variant="primary")
    report = gr.Textbox(label="Validation report", lines=6, max_lines=30, elem_id="validate-report")
    gr.Markdown("Trained tokens are <mark class='trained'>green</mark>; image/video token runs are folded.")
    preview = gr.HTML(elem_id="preview")
    names = ["model_id", "data_path", "eval_data_path", "image_folder", "model_max_length"]
    validate_button.click(validate_report, [fields[name] for name in names], report)
    preview_inputs = [fields[name] for name in ("model_id", "data_path", "image_folder", "model_max_length")]
    preview_button.click(preview_html, [*preview_inputs, num_samples], preview)


# --- Merge ---------------------------------------------------------------------------------------------------


def merge_tab(fields: dict) -> None:
    gr.Markdown("Fold a LoRA adapter output into its base model: a standalone checkpoint (`vlmtune merge`).")
    adapter = gr.Textbox(label="adapter output folder", info="The output_dir of a LoRA or QLoRA run.")
    output = gr.Textbox(label="merged folder", info="A new folder for the merged checkpoint.")
    dtype = gr.Dropdown(["auto", "float32", "bfloat16", "float16"], value="auto", label="dtype")
    button = gr.Button("Merge", variant="primary")
    log = gr.Textbox(label="vlmtune merge", lines=8)
    fields["output_dir"].change(lambda folder: folder, fields["output_dir"], adapter)
    button.click(merge, [adapter, output, dtype], log)


def merge(adapter: str, output: str, dtype: str) -> str:
    """`vlmtune merge` of two folders under the workspace root."""
    argv = [adapter, output, "--dtype", dtype]
    return workspace.argv_refused(argv, "merge") or run_command(["merge", *argv])


# --- Compose -------------------------------------------------------------------------------------------------


def compose_model(*values) -> tuple[str, dict]:
    """`vlmtune compose` with the form's values (COMPOSE_FIELDS order); its output, and the Model tab's composed
    models (the new folder among them when it worked)."""
    form = dict(zip(COMPOSE_FIELDS, values, strict=True))
    argv = form_argv(form, "compose")
    log = workspace.argv_refused(argv, "compose") or run_command(["compose", *argv])
    if log.endswith("(exit status 0)"):
        COMPOSED.append(str(form["output_dir"]).strip())
    return log, gr.update(choices=composed_folders())


def compose_tab(fields: dict) -> None:
    gr.Markdown(
        "Build a new VLM from a vision encoder and a causal LM with a fresh projector (`vlmtune compose`), then "
        "pick it in the Model tab (composed models) and train it. Parts: tiny-siglip, tiny-clip, tiny-qwen3, "
        "tiny-llama (built offline), a local folder, or a hub id already in the local cache."
    )
    specs = form_fields(COMPOSE_FIELDS, "compose")
    inputs = []
    for at in range(0, len(specs), 4):
        with gr.Row():
            inputs += [field_component(spec, elem_id=f"compose-{spec.name}") for spec in specs[at : at + 4]]
    button = gr.Button("Compose", variant="primary", elem_id="compose")
    log = gr.Textbox(label="vlmtune compose", lines=8, elem_id="compose-log")
    button.click(compose_model, inputs, [log, fields["composed"]])


def tabs(serve_python: str = sys.executable):
    """The page's tabs, in order, as (title, function); `serve_python` runs `vlmtune serve` (one with vLLM)."""
    from vlmtune.apps.webui.chat_tab import chat_tab
    from vlmtune.apps.webui.serve_tab import serve_tab
    from vlmtune.apps.webui.train_tab import dpo_tab, grpo_tab, train_tab

    return [
        ("Model", model_tab),
        ("Data", data_tab),
        ("Train", train_tab),
        ("GRPO", grpo_tab),
        ("DPO", dpo_tab),
        ("Chat", chat_tab),
        ("Merge", merge_tab),
        ("Compose", compose_tab),
        ("Serve", functools.partial(serve_tab, python=serve_python)),
    ]


def build_app(serve_python: str = sys.executable) -> gr.Blocks:
    from vlmtune.apps.webui.serve_tab import last_served
    from vlmtune.apps.webui.train_tab import FORMS, restore_last_run

    fields: dict = {}
    with gr.Blocks(title="vlmtune") as app:
        gr.Markdown("# vlmtune\nFinetune a vision-language model: pick it, check the data, train, talk to it.")
        for title, make_tab in tabs(serve_python):
            with gr.Tab(title, id=title.lower()):
                make_tab(fields)
        for form in FORMS:  # each run tab reopens on the newest run of its command this server started
            app.load(lambda form=form: restore_last_run(form), None, [fields[key] for key in form.inputs])
        app.load(last_served, None, fields["serve_output"])  # the Serve tab reopens on its newest server
    return app
