"""The Train tab: the generated form, its YAML and shell views, and the run's Start/Stop/Resume, log and curves."""

from __future__ import annotations

import html
import shlex
from pathlib import Path

import gradio as gr
import pandas as pd

from vlmtune.arguments import ArgumentError
from vlmtune.webui import runs
from vlmtune.webui.forms import (
    ALL_FIELDS,
    TRAIN_FIELDS,
    argv_words,
    check_argv,
    form_fields,
    from_yaml,
    shell_command,
    to_yaml,
    train_argv,
    values_from_words,
)

STARTED: list[str] = []  # output folders of the runs this server started, newest last (the page reopens on it)
ROW = 4  # fields per row
INPUT_NAMES = [*ALL_FIELDS, "extra_args"]  # the form's components, in the order the handlers take them


def full_argv(values: tuple) -> list[str]:
    """`vlmtune train` words for the form's values (ALL_FIELDS order) and the extra-arguments box (last)."""
    *field_values, extra = values
    return train_argv(dict(zip(ALL_FIELDS, field_values, strict=True))) + shlex.split(extra or "")


def views(*values) -> tuple[str, str]:
    """The YAML (--config) and shell views of the form."""
    *field_values, extra = values
    config = to_yaml(dict(zip(ALL_FIELDS, field_values, strict=True)))
    try:
        return config, shell_command(full_argv(values))
    except ValueError as error:  # unbalanced quotes in the extra arguments
        return config, f"# extra arguments: {error}"


def apply_yaml(text: str, *values):
    """The form filled from a YAML text; an error line instead when the YAML is wrong."""
    try:
        fields, extra = values_from_words(from_yaml(text), ALL_FIELDS)
    except (ArgumentError, ValueError) as error:
        return *(gr.update() for _ in values), f"**YAML not applied:** {error}"
    return *(fields[name] for name in ALL_FIELDS), shlex.join(extra), "YAML applied to the form."


def start(resume: bool, *values) -> str:
    """Check the arguments as `vlmtune train` does, then start it; the reason when it cannot start."""
    try:
        argv = full_argv(values)
    except ValueError as error:
        return f"**Not started:** extra arguments: {error}"
    if resume:
        argv += ["--resume_from_checkpoint", "auto"]
    problem = check_argv(argv)
    if problem:
        return f"**Not started:** {problem}"
    try:
        run = runs.start_run(argv)
    except runs.RunRefused as error:
        return f"**Not started:** {error}"
    output_dir = runs.output_argv(argv)
    config = to_yaml(dict(zip(ALL_FIELDS, values[:-1], strict=True)))
    (Path(output_dir) / runs.CONFIG_FILE).write_text(config)
    STARTED.append(output_dir)
    return f"Started `{shell_command(argv)}` (pid {run['pid']}), log in `{run['log_file']}`."


def refresh(output_dir: str):
    """Status line, progress, loss curve and log tail of the run in `output_dir`."""
    status = runs.run_status(output_dir or "trainer_output")
    bar = ""
    if status.total_steps:
        bar = f'<progress value="{status.step}" max="{status.total_steps}"></progress> {status.progress}'
    # No frame at all before the first loss: an empty one fixes the plot's colour scale empty for good.
    curve = pd.DataFrame(status.losses) if status.losses else None
    state = f'<span id="run-state" data-state="{status.state}">{html.escape(status.message)}</span>'
    return state, bar, curve, status.log_tail


def restore_last_run():
    """On opening the page: the form of the newest run this server started, so its log and curves show."""
    if not STARTED:
        return tuple(gr.update() for _ in range(len(ALL_FIELDS) + 1))
    run = runs.read_run(STARTED[-1]) or {"argv": []}
    values, extra = values_from_words(argv_words(run["argv"]), ALL_FIELDS)
    extra = [word for word in extra if word not in ("--resume_from_checkpoint", "auto")]
    return *(values[name] for name in ALL_FIELDS), shlex.join(extra)


def train_tab(fields: dict) -> None:
    from vlmtune.webui.app import field_component

    specs = form_fields(TRAIN_FIELDS)
    for at in range(0, len(specs), ROW):
        with gr.Row():
            for spec in specs[at : at + ROW]:
                fields[spec.name] = field_component(spec)
    fields["extra_args"] = gr.Textbox(
        label="more arguments", info="Any other `vlmtune train` arguments, as on the command line."
    )
    inputs = [fields[name] for name in INPUT_NAMES]
    with gr.Row():
        start_button = gr.Button("Start", variant="primary", elem_id="start")
        stop_button = gr.Button("Stop", variant="stop", elem_id="stop")
        resume_button = gr.Button("Resume from the newest checkpoint", elem_id="resume")
    message = gr.Markdown(elem_id="start-message")
    status = gr.HTML(elem_id="run-status")
    progress = gr.HTML(elem_id="run-progress")
    curve = gr.LinePlot(x="epoch", y="value", color="series", label="loss", height=260, elem_id="loss-curve")
    log = gr.Textbox(label="log (webui_run.log)", lines=12, max_lines=12, autoscroll=True, elem_id="run-log")
    with gr.Accordion("YAML (vlmtune train --config) and shell command", open=False):
        config = gr.Code(language="yaml", label="YAML: edit, then apply to the form", interactive=True)
        apply_button = gr.Button("Apply YAML to the form")
        command = gr.Code(language="shell", label="the same run from a shell", elem_id="shell-command")

    gr.on([fields[name].change for name in INPUT_NAMES], views, inputs, [config, command])
    apply_button.click(apply_yaml, [config, *inputs], [*inputs, message])
    start_button.click(lambda *values: start(False, *values), inputs, message)
    resume_button.click(lambda *values: start(True, *values), inputs, message)
    stop_button.click(lambda folder: runs.stop_run(folder or "trainer_output"), fields["output_dir"], message)
    gr.Timer(1.0).tick(refresh, fields["output_dir"], [status, progress, curve, log])
