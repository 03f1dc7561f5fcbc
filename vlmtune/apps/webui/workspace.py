"""The web UI's workspace root: the one folder whose files the page may name (no gradio here).

    vlmtune webui --root /data/me/project      # the page reads and writes under /data/me/project only

Every path a form takes (data, image and video folders, output folders, models, reward plugins, a --config file,
adapters, exports, the API key file of a server) goes through `inside` before anything reads or writes it: it
is resolved as the command would open it (relative to the current folder, which `vlmtune webui` sets to the
root), symlinks followed, and refused with one line when it lands outside the root (`..` and a symlink that
leaves the root included). Uploads are copied to `<root>/webui_uploads/`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from vlmtune.errors import ArgumentError

ROOT: str | None = None  # set by `vlmtune webui --root`; None: the current folder
UPLOADS = "webui_uploads"
# Arguments of vlmtune train / grpo / compose / serve / merge / export whose value is a file or folder.
PATH_ARGUMENTS = (
    "image_folder",
    "video_folder",
    "model_local_path",
    "output_dir",
    "logging_dir",
    "reward_plugin",
    "config",
    "deepspeed",
    "fsdp_config",
    "resume_from_checkpoint",
    "output",
    "api_key_file",
)
# Arguments that name either a file or folder or something else (a hub id in the local cache, a registered id).
NAME_OR_PATH_ARGUMENTS = ("data_path", "eval_data_path", "vision", "llm", "base")


def root() -> str:
    """The workspace root, resolved (symlinks followed)."""
    return os.path.realpath(ROOT or os.getcwd())


def inside(path: str | Path, what: str = "path") -> str:
    """`path` as given when it lies under the workspace root once resolved; ArgumentError naming it otherwise."""
    real, top = os.path.realpath(path), root()
    if os.path.commonpath([real, top]) != top:
        shown = f"{path}" if os.path.realpath(path) == os.path.abspath(path) else f"{path} (-> {real})"
        raise ArgumentError(f"{what} {shown} is outside the web UI's workspace {top} (vlmtune webui --root)")
    return str(path)


def looks_like_path(value: str) -> bool:
    """A name-or-path value that is a path: it exists, or it is written as one (absolute, ./, ../, ~)."""
    return os.path.lexists(value) or value.startswith(("/", "./", "../", "~")) or value in (".", "..")


def check_argv_paths(argv: list[str]) -> None:
    """Every file or folder in `vlmtune <command>` words (`--name value...`, positional words too) under the root;
    ArgumentError naming the first that is not."""
    name = None
    for word in argv:
        if word.startswith("--"):
            name = word[2:].split("=", 1)[0].replace("-", "_")
            if "=" in word:
                check_value(name, word.split("=", 1)[1])
            continue
        check_value(name, word)


def check_value(name: str | None, value: str) -> None:
    """One argument's value: a path argument's always, a name-or-path one's when it looks like a path;
    positional words (name None: serve's output folder, merge's and export's folders) are paths."""
    if name is None or name in PATH_ARGUMENTS:
        if name == "resume_from_checkpoint" and value.lower() in ("auto", "true", "false"):
            return
        inside(value, f"--{name}" if name else "folder")
    elif name in NAME_OR_PATH_ARGUMENTS and looks_like_path(value):
        inside(value, f"--{name}")


def argv_refused(argv: list[str], command: str) -> str | None:
    """`vlmtune <command>`'s one-line error for the first file or folder in `argv` outside the root, else None."""
    try:
        check_argv_paths(argv)
    except ArgumentError as error:
        return f"vlmtune {command}: error: {error}"
    return None


def upload_folder() -> Path:
    """A new folder for one upload under `<root>/webui_uploads/`."""
    uploads = Path(root()) / UPLOADS
    uploads.mkdir(exist_ok=True)
    return Path(tempfile.mkdtemp(dir=uploads))
