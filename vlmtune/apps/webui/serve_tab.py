"""The Serve tab: `vlmtune serve` of an output (vLLM's OpenAI-compatible server), and `vlmtune export --for vllm`.

The form is generated from serve's own parser (vlmtune.apps.webui.forms.SERVE_FIELDS). Start checks the words as serve
does before it starts vLLM (the flags, the folder, an adapter vLLM cannot take), then runs the real
`vlmtune serve` detached like a training run (vlmtune.apps.webui.runs): its files are in `<output>/webui_serve/`
(so a server has its own lock per served folder and does not overwrite the record of the run that trained the
output), Stop ends its process group, and a closed browser leaves it running. The page shows the server's URL
once it answers `/v1/models`, else its state (a failed start shows serve's one-line error, e.g. vLLM missing).
"""

from __future__ import annotations

import html
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path

import gradio as gr

from vlmtune.apps.webui import runs, workspace
from vlmtune.apps.webui.forms import SERVE_FIELDS, check_argv, command_parser, form_argv, form_fields, shell_command
from vlmtune.errors import ArgumentError

SERVER_FOLDER = "webui_serve"  # in the served output: the server's webui_run.json / .log / .exit
ANY_ADDRESS = ("0.0.0.0", "::", "")  # a server bound to every address answers on this machine's loopback
SERVED: list[str] = []  # output folders this UI server started a server for, newest last (the page reopens on it)


def server_folder(output: str) -> Path:
    return Path(output.strip()) / SERVER_FOLDER


def start_server(*values, python: str = sys.executable) -> str:
    """Check the form's words (SERVE_FIELDS order) as `vlmtune serve` does, then start it; else why not."""
    argv = form_argv(dict(zip(SERVE_FIELDS, values, strict=True)), "serve")
    problem = workspace.argv_refused(argv, "serve") or check_argv(argv, "serve")
    if problem:
        return f"**Not started:** {problem}"
    try:
        run = runs.start_run(argv, python=python, command="serve", folder=server_folder(values[0]))
    except runs.RunRefused as error:
        return f"**Not started:** {error}"
    SERVED.append(values[0].strip())
    return f"Started `{shell_command(argv, 'serve')}` (pid {run['pid']}), log in `{run['log_file']}`."


def stop_server(output: str) -> str:
    """Stop the server of `output` (a folder under the workspace root)."""
    if not output or not output.strip():
        return ""
    try:
        return runs.stop_run(server_folder(workspace.inside(output.strip(), "folder")))
    except ArgumentError as error:
        return f"**Not stopped:** {error}"


def server_url(run: dict) -> str:
    """The base URL of the OpenAI API of a server started with `run`'s words."""
    args = command_parser("serve").parse_args(run["argv"])
    host = "127.0.0.1" if args.host in ANY_ADDRESS else args.host
    return f"http://{f'[{host}]' if ':' in host else host}:{args.port}/v1"


def run_key(run: dict) -> str | None:
    """The API key a server started with `run`'s words asks for (its --api_key_file's, or the environment's)."""
    from vlmtune.serving.serve import api_key

    try:
        return api_key(command_parser("serve").parse_args(run["argv"]))
    except ArgumentError:  # the file went away since
        return None


def answers(url: str, key: str | None = None) -> list[str] | None:
    """The model names a server at `url` lists (GET /v1/models, with the key if it has one), or None while it
    does not answer."""
    request = urllib.request.Request(f"{url}/models", headers={"Authorization": f"Bearer {key}"} if key else {})
    try:
        with urllib.request.urlopen(request, timeout=0.5) as response:
            return [model["id"] for model in json.load(response)["data"]]
    except (OSError, ValueError, KeyError, TypeError):  # not listening yet, or not (yet) an OpenAI server
        return None


def server_status(output: str) -> tuple[str, str, str]:
    """State line (with its URL once it answers), the URL alone and the log tail of the server for `output`."""
    if not output or not output.strip():
        return "", "", ""
    try:
        folder = server_folder(workspace.inside(output.strip(), "folder"))
    except ArgumentError as error:
        return f'<span id="serve-state" data-state="refused">{html.escape(str(error))}</span>', "", ""
    status = runs.run_status(folder, tail=20)
    url, message = "", status.message
    if status.state == "none":
        message = f"no server started from the web UI for {output.strip()}"
    elif status.state == "stopped":
        message = "stopped"
    elif status.state == "running":
        run = runs.read_run(folder)
        base = server_url(run)
        models = answers(base, run_key(run))
        if models is None:
            message = f"starting (loading the model): {status.message}; waiting for {base}/models"
        else:
            url, message = base, f"serving {', '.join(models)} at {base} ({status.message})"
    state = f'<span id="serve-state" data-state="{status.state}">{html.escape(message)}</span>'
    return state, url, status.log_tail


def last_served() -> str | dict:
    """On opening the page: the folder of the newest server started here, so that its URL and log show."""
    return SERVED[-1] if SERVED else gr.update()


def export_for_serving(adapter: str, target: str) -> tuple[str, dict]:
    """`vlmtune export --for vllm` as a separate process; its output, and the Serve folder set to the export."""
    from vlmtune.apps.webui.app import run_command

    argv = ["export", "--for", "vllm", adapter.strip(), target.strip()]
    problem = workspace.argv_refused(argv[3:], "export")
    if problem:
        return problem, gr.update()
    log = run_command(argv)
    return log, gr.update(value=target.strip()) if log.endswith("(exit status 0)") else gr.update()


def serve_tab(fields: dict, python: str = sys.executable) -> None:
    """The tab; Start runs `python -m vlmtune serve ...` (`vlmtune webui --serve_python`)."""
    from vlmtune.apps.webui.app import field_component

    gr.Markdown(
        f"Serve an output with vLLM's OpenAI-compatible server: `vlmtune serve`, run by `{python}`, which needs "
        "vLLM (`vlmtune webui --serve_python` picks another Python; docs/serving.md). A LoRA output that "
        "trained the projector fully is made servable first: **Export for vLLM** below (`vlmtune export --for "
        "vllm`) fills the folder with the export."
    )
    with gr.Row():
        export_source = gr.Textbox(label="adapter output folder", info="The output_dir of a LoRA or QLoRA run.")
        export_target = gr.Textbox(label="export folder", info="A new folder for the servable model.")
        export_button = gr.Button("Export for vLLM", elem_id="serve-export", scale=0)
    export_log = gr.Textbox(label="vlmtune export --for vllm", lines=3, elem_id="serve-export-log")
    specs = form_fields(SERVE_FIELDS, "serve")
    inputs = []
    for at in range(0, len(specs), 4):
        with gr.Row():
            inputs += [field_component(spec, elem_id=f"field-serve_{spec.name}") for spec in specs[at : at + 4]]
    fields.update({f"serve_{spec.name}": component for spec, component in zip(specs, inputs, strict=True)})
    with gr.Row():
        start_button = gr.Button("Start", variant="primary", elem_id="serve-start")
        stop_button = gr.Button("Stop", variant="stop", elem_id="serve-stop")
    message = gr.Markdown(elem_id="serve-start-message")
    status = gr.HTML(elem_id="serve-status")
    url = gr.Textbox(label="OpenAI API base URL (once the server answers)", elem_id="serve-url")
    log = gr.Textbox(label=f"log ({SERVER_FOLDER}/webui_run.log)", lines=10, max_lines=10, autoscroll=True)

    output = fields["serve_output"]
    fields["output_dir"].change(lambda folder: folder, fields["output_dir"], export_source)
    export_button.click(export_for_serving, [export_source, export_target], [export_log, output])
    start_button.click(lambda *values: start_server(*values, python=python), inputs, message)
    stop_button.click(stop_server, output, message)
    gr.Timer(1.0).tick(server_status, output, [status, url, log])
