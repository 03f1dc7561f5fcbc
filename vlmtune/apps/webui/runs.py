"""Runs started from the web UI: one `vlmtune train` (or `grpo`, `serve`) process per folder (no gradio here).

A run is the real command, `python -m vlmtune train ...`, started in its own session (process group) under
a one-line `sh` that records its exit status, so it neither stops nor loses its status when the browser or the
UI server goes away. Everything about it lives in its folder (a run's output folder; a server's is a folder in
the output it serves, vlmtune.apps.webui.serve_tab):

    webui_run.json    pid (of the process group), argv, start time: the lock; a second start is refused
    webui_run.log     stdout and stderr of the run (the Trainer's progress bar and logged losses)
    webui_run.exit    the exit status, written by the `sh` when the run ends (or "stopped" by Stop)
    webui_config.yaml the arguments as a `--config` file

Reopening the page finds a run from these files; `RunStatus` is what the page shows.
"""

from __future__ import annotations

import ast
import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

LOSSES = ("loss", "eval_loss", "reward")  # the logged values the page plots (reward: a grpo step's mean)
RUN_FILE, LOG_FILE, EXIT_FILE, CONFIG_FILE = "webui_run.json", "webui_run.log", "webui_run.exit", "webui_config.yaml"
_children: dict[int, subprocess.Popen] = {}  # runs this server started, polled so that none is left a zombie
# A progress bar without a description (the Trainer's): " 30%|###       | 3/10 [00:01<00:02,  2.10it/s]"
PROGRESS = re.compile(r"^\s*\d+%\|[^|]*\|\s*(\d+)/(\d+) \[([^<\]]*)(?:<([^,\]]*))?")


class RunRefused(RuntimeError):
    """A run that cannot start (one is already going in that folder); the message says why."""


def output_argv(argv: list[str]) -> str:
    """The --output_dir of a `vlmtune train` command line (the Trainer's default when absent)."""
    for at, word in enumerate(argv[:-1]):
        if word == "--output_dir":
            return argv[at + 1]
    return "trainer_output"


def read_run(output_dir: str | Path) -> dict | None:
    path = Path(output_dir) / RUN_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def process_start(pid: int) -> str | None:
    """When a running process started (clock ticks since boot, from /proc/<pid>/stat); None when it is gone or
    a zombie. Together with the pid it names one process: a pid reused later has another start time."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] in ("Z", "X") else fields[19]


def is_alive(run: dict) -> bool:
    """The run's process group leader (its `sh`) still runs."""
    child = _children.get(run["pid"])
    if child is not None:
        return child.poll() is None
    return process_start(run["pid"]) == run["process_start"]


def start_run(
    argv: list[str], python: str = sys.executable, command: str = "train", folder: str | Path | None = None
) -> dict:
    """Start `vlmtune <command> argv` detached, its files in `folder` (by default the --output_dir a command that
    trains with the HF Trainer writes); RunRefused when a run is already going there."""
    output_dir = Path(folder or output_argv(argv)).resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    with open(output_dir / ".webui.lock", "w") as lock:  # two UI servers starting in one folder at once
        fcntl.flock(lock, fcntl.LOCK_EX)
        run = read_run(output_dir)
        if run and is_alive(run):
            raise RunRefused(
                f"a run is already going in {output_dir} (pid {run['pid']}, started {run['started']}): "
                f"stop it first, or choose another {'output folder' if folder else 'output_dir'}"
            )
        exit_file, log_file = output_dir / EXIT_FILE, output_dir / LOG_FILE
        exit_file.unlink(missing_ok=True)
        words = [python, "-m", "vlmtune", command, *argv]
        # `sh` waits for the run and writes its exit status; a kill of the group (Stop) takes both.
        script = 'exit_file="$1"; shift; "$@"; echo $? > "$exit_file"'
        with open(log_file, "w") as log:
            child = subprocess.Popen(
                ["sh", "-c", script, "sh", str(exit_file), *words],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: outlives the page and the server's Ctrl-C
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        _children[child.pid] = child
        run = {
            "pid": child.pid,
            "command": command,
            "argv": argv,
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "process_start": process_start(child.pid),
            "exit_file": str(exit_file),
            "log_file": str(log_file),
        }
        (output_dir / RUN_FILE).write_text(json.dumps(run, indent=1))
        return run


def stop_run(output_dir: str | Path) -> str:
    run = read_run(output_dir)
    if not run or not is_alive(run):
        return f"no run is going in {output_dir}"
    os.killpg(run["pid"], signal.SIGTERM)  # the `sh` and the run, which saves nothing more
    for _ in range(300):
        if not is_alive(run):
            break
        time.sleep(0.1)
    (Path(output_dir) / EXIT_FILE).write_text("stopped\n")  # after the `sh` is gone, so nothing overwrites it
    return f"stopped the run in {output_dir} (pid {run['pid']})"


@dataclass
class RunStatus:
    state: str  # none, running, finished, failed, stopped, ended (status lost: killed from outside)
    message: str
    log_tail: str = ""
    step: int = 0
    total_steps: int = 0
    progress: str = ""
    losses: list[dict] = field(default_factory=list)  # {"epoch", "value", "series": one of LOSSES}


def log_lines(text: str) -> list[str]:
    """Lines of a log as a terminal shows them: a progress bar's carriage returns keep its latest state."""
    return [line.rsplit("\r", 1)[-1] for line in text.split("\n")]


def progress_and_losses(text: str) -> tuple[re.Match | None, list[dict]]:
    """The training progress bar's latest state, and the losses the Trainer's progress callback logged (lines
    such as `{'loss': '2.31', 'grad_norm': '1.5', 'learning_rate': '0.02', 'epoch': '0.5'}`), each at the
    epoch it logged (exact, unlike the bar's count, which tqdm redraws at most ten times a second). The
    training bar is the first bar without a description (a later one with another total is an evaluation's)."""
    bar, points = None, []
    for piece in re.split(r"[\r\n]", text):
        match = PROGRESS.match(piece)
        if match and (bar is None or match.group(2) == bar.group(2)):
            bar = match
            continue
        piece = piece.strip()
        if not (piece.startswith("{") and piece.endswith("}") and "loss'" in piece):
            continue
        try:
            logs = ast.literal_eval(piece)  # a dict literal of strings and numbers; never executed
        except (ValueError, SyntaxError):
            continue
        if "epoch" in logs:
            epoch = float(logs["epoch"])
            points += [{"epoch": epoch, "value": float(logs[key]), "series": key} for key in LOSSES if key in logs]
    return bar, points


def last_error(lines: list[str]) -> str:
    """The line that says why a run ended: the CLI's one-line error, else a traceback's last line."""
    text = [line.strip() for line in lines if line.strip()]
    for line in reversed(text):
        if re.match(r"vlmtune \w+: error: ", line):
            return line
    for at, line in enumerate(text):
        if line.startswith("Traceback"):
            tail = [later for later in text[at:] if not later.startswith(("File ", "^", "~"))]
            return tail[-1]
    return text[-1] if text else "(the log is empty)"


def run_status(output_dir: str | Path, tail: int = 12) -> RunStatus:
    output_dir = Path(output_dir)
    run = read_run(output_dir)
    if not run:
        return RunStatus("none", f"no run started from the web UI in {output_dir}")
    try:
        text = (output_dir / LOG_FILE).read_text(errors="replace")  # the folder's, whatever webui_run.json says
    except OSError:
        text = ""
    lines = log_lines(text)
    bar, losses = progress_and_losses(text)
    shown = [line for line in lines if line.strip()][-tail:]
    status = RunStatus("running", "", "\n".join(shown), losses=losses)
    if bar:
        status.step, status.total_steps = int(bar.group(1)), int(bar.group(2))
        status.progress = f"step {bar.group(1)}/{bar.group(2)}, {bar.group(3)} elapsed"
        status.progress += f", {bar.group(4)} left" if bar.group(4) else ""
    if is_alive(run):
        status.message = f"running (pid {run['pid']}, started {run['started']})"
        return status
    try:
        code = (output_dir / EXIT_FILE).read_text().strip()
    except OSError:
        code = ""
    if code == "0":
        status.state, status.message = "finished", f"finished: outputs in {output_dir}"
    elif code == "stopped":
        status.state, status.message = "stopped", f"stopped at step {status.step} (Resume continues from a checkpoint)"
    elif code:
        status.state, status.message = "failed", f"failed (exit status {code}): {last_error(lines)}"
    else:
        status.state, status.message = "ended", f"ended without an exit status (killed?): {last_error(lines)}"
    return status
