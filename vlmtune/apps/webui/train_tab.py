"""The Train and GRPO tabs: one run tab (`run_tab`) over a command's form (`RunForm`): the generated fields,
their YAML and shell views, and the run's Start/Stop/Resume, log, progress and curves.

`vlmtune train` and `vlmtune grpo` parse the same way (HfArgumentParser, `--config`), train with the same HF
Trainer into an output folder and log the same way (GRPO adds reward keys), so both tabs are this one code with
the command's name and field names (vlmtune.apps.webui.forms.TRAIN_FIELDS, GRPO_FIELDS, DPO_FIELDS).
"""

from __future__ import annotations

import html
import shlex
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import pandas as pd

from vlmtune.apps.webui import runs, workspace
from vlmtune.apps.webui.forms import (
    ALL_FIELDS,
    DPO_FIELDS,
    GRPO_FIELDS,
    TRAIN_FIELDS,
    argv_words,
    check_argv,
    form_argv,
    form_fields,
    from_yaml,
    shell_command,
    to_yaml,
    values_from_words,
)
from vlmtune.errors import ArgumentError

ROW = 4  # fields per row


@dataclass(frozen=True)
class RunForm:
    """A command's run tab: `names` are the fields its handlers take, in order; the tab renders `own` of them
    (the others are the Model and Data tabs' components), keyed `prefix + name` in the page's `fields`."""

    command: str
    names: tuple[str, ...]
    own: tuple[str, ...]
    prefix: str = ""
    curve: str = "loss"

    def key(self, name: str) -> str:
        return self.prefix + name if name in self.own else name

    @property
    def inputs(self) -> list[str]:
        """The keys of the components the handlers take: the fields, then the "more arguments" box."""
        return [*(self.key(name) for name in self.names), self.prefix + "extra_args"]

    def values(self, field_values: tuple) -> dict:
        return dict(zip(self.names, field_values, strict=True))


TRAIN = RunForm("train", tuple(ALL_FIELDS), tuple(TRAIN_FIELDS))
REWARD_CURVE = "loss and reward (the mean over the step's completions)"
GRPO = RunForm("grpo", tuple(GRPO_FIELDS), tuple(GRPO_FIELDS[2:]), prefix="grpo_", curve=REWARD_CURVE)
DPO = RunForm("dpo", tuple(DPO_FIELDS), tuple(DPO_FIELDS[2:]), prefix="dpo_")
FORMS = (TRAIN, GRPO, DPO)
STARTED: dict[str, list[str]] = {}  # per command, output folders this server started, newest last (page reopens)


def full_argv(form: RunForm, values: tuple) -> list[str]:
    """The command's words for the form's values (`form.names` order) and the extra-arguments box (last)."""
    *field_values, extra = values
    return form_argv(form.values(field_values), form.command) + shlex.split(extra or "")


def views(form: RunForm, *values) -> tuple[str, str]:
    """The YAML (--config) and shell views of the form."""
    config = to_yaml(form.values(values[:-1]), form.command)
    try:
        return config, shell_command(full_argv(form, values), form.command)
    except ValueError as error:  # unbalanced quotes in the extra arguments
        return config, f"# extra arguments: {error}"


def apply_yaml(form: RunForm, text: str, *values):
    """The form filled from a YAML text; an error line instead when the YAML is wrong."""
    try:
        fields, extra = values_from_words(from_yaml(text, form.command), list(form.names), form.command)
    except (ArgumentError, ValueError) as error:
        return *(gr.update() for _ in values), f"**YAML not applied:** {error}"
    return *(fields[name] for name in form.names), shlex.join(extra), "YAML applied to the form."


def start(form: RunForm, resume: bool, *values) -> str:
    """Check the arguments as the command does, then start it; the reason when it cannot start."""
    try:
        argv = full_argv(form, values)
    except ValueError as error:
        return f"**Not started:** extra arguments: {error}"
    if resume:
        argv += ["--resume_from_checkpoint", "auto"]
    # The files first: checking a grpo command line imports its reward plugins, i.e. runs them.
    problem = workspace.argv_refused(argv, form.command) or check_argv(argv, form.command)
    if problem:
        return f"**Not started:** {problem}"
    try:
        run = runs.start_run(argv, command=form.command)
    except runs.RunRefused as error:
        return f"**Not started:** {error}"
    output_dir = runs.output_argv(argv)
    (Path(output_dir) / runs.CONFIG_FILE).write_text(to_yaml(form.values(values[:-1]), form.command))
    STARTED.setdefault(form.command, []).append(output_dir)
    return f"Started `{shell_command(argv, form.command)}` (pid {run['pid']}), log in `{run['log_file']}`."


def refresh(output_dir: str, prefix: str = ""):
    """Status line (its element id after the tab's prefix), progress, loss (and reward) curve and log tail of the
    run in `output_dir` (one under the workspace root)."""
    try:
        folder = workspace.inside(output_dir or "trainer_output", "--output_dir")
    except ArgumentError as error:
        return f'<span id="{prefix}run-state" data-state="refused">{html.escape(str(error))}</span>', "", None, ""
    status = runs.run_status(folder)
    bar = ""
    if status.total_steps:
        bar = f'<progress value="{status.step}" max="{status.total_steps}"></progress> {status.progress}'
    # No frame at all before the first loss: an empty one fixes the plot's colour scale empty for good.
    curve = pd.DataFrame(status.losses) if status.losses else None
    state = f'<span id="{prefix}run-state" data-state="{status.state}">{html.escape(status.message)}</span>'
    return state, bar, curve, status.log_tail


def stop(output_dir: str) -> str:
    """Stop the run in `output_dir` (one under the workspace root)."""
    try:
        return runs.stop_run(workspace.inside(output_dir or "trainer_output", "--output_dir"))
    except ArgumentError as error:
        return f"**Not stopped:** {error}"


def restore_last_run(form: RunForm):
    """On opening the page: the form of the newest run of this command this server started, so its log and
    curves show."""
    started = STARTED.get(form.command)
    if not started:
        return tuple(gr.update() for _ in form.inputs)
    run = runs.read_run(started[-1]) or {"argv": []}
    values, extra = values_from_words(argv_words(run["argv"]), list(form.names), form.command)
    extra = [word for word in extra if word not in ("--resume_from_checkpoint", "auto")]
    return *(values[name] for name in form.names), shlex.join(extra)


def run_tab(form: RunForm, fields: dict) -> None:
    """The form's own fields, its buttons, run status, curve, log and YAML/shell views, wired to the handlers."""
    from vlmtune.apps.webui.app import field_component

    specs = form_fields(list(form.own), form.command)
    for at in range(0, len(specs), ROW):
        with gr.Row():
            for spec in specs[at : at + ROW]:
                key = form.key(spec.name)
                fields[key] = field_component(spec, elem_id=f"field-{key}")
    fields[form.prefix + "extra_args"] = gr.Textbox(
        label="more arguments", info=f"Any other `vlmtune {form.command}` arguments, as on the command line."
    )
    inputs = [fields[key] for key in form.inputs]
    with gr.Row():
        start_button = gr.Button("Start", variant="primary", elem_id=f"{form.prefix}start")
        stop_button = gr.Button("Stop", variant="stop", elem_id=f"{form.prefix}stop")
        resume_button = gr.Button("Resume from the newest checkpoint", elem_id=f"{form.prefix}resume")
    message = gr.Markdown(elem_id=f"{form.prefix}start-message")
    status = gr.HTML(elem_id=f"{form.prefix}run-status")
    progress = gr.HTML(elem_id=f"{form.prefix}run-progress")
    curve = gr.LinePlot(
        x="epoch", y="value", color="series", label=form.curve, height=260, elem_id=f"{form.prefix}loss-curve"
    )
    log = gr.Textbox(
        label="log (webui_run.log)", lines=12, max_lines=12, autoscroll=True, elem_id=f"{form.prefix}run-log"
    )
    with gr.Accordion(f"YAML (vlmtune {form.command} --config) and shell command", open=False):
        config = gr.Code(language="yaml", label="YAML: edit, then apply to the form", interactive=True)
        apply_button = gr.Button("Apply YAML to the form")
        command = gr.Code(language="shell", label="the same run from a shell", elem_id=f"{form.prefix}shell-command")

    output_dir = fields[form.key("output_dir")]
    gr.on([component.change for component in inputs], lambda *v: views(form, *v), inputs, [config, command])
    apply_button.click(lambda *v: apply_yaml(form, *v), [config, *inputs], [*inputs, message])
    start_button.click(lambda *values: start(form, False, *values), inputs, message)
    resume_button.click(lambda *values: start(form, True, *values), inputs, message)
    stop_button.click(stop, output_dir, message)
    gr.Timer(1.0).tick(lambda folder: refresh(folder, form.prefix), output_dir, [status, progress, curve, log])


def train_tab(fields: dict) -> None:
    run_tab(TRAIN, fields)


def grpo_tab(fields: dict) -> None:
    gr.Markdown(
        "Reinforcement learning with verifiable rewards after SFT (`vlmtune grpo`): the model is the Model tab's; "
        "the data are prompts (a `solution` column for the accuracy reward; `vlmtune validate --task grpo`)."
    )
    run_tab(GRPO, fields)


def dpo_tab(fields: dict) -> None:
    gr.Markdown(
        "Preference optimization after SFT (`vlmtune dpo`): the model is the Model tab's; the data are pairs "
        "(prompt, chosen and rejected replies; `vlmtune validate --task dpo`; docs/dpo.md)."
    )
    run_tab(DPO, fields)
