"""`vlmtune serve`: vLLM's OpenAI-compatible server for a vlmtune output, on 127.0.0.1 by default.

    vlmtune serve output/my-run-merged                      # a merged or fully finetuned output
    vlmtune serve output/my-lora-run --port 8001           # base + adapter (an adapter vLLM takes, see export)
    vlmtune serve output/my-run-merged --host 0.0.0.0 --api_key_file ~/.vlmtune-key   # other machines: a key
    VLMTUNE_API_KEY=... vlmtune serve output/my-run-merged --host 0.0.0.0                 # ... or in the env
    curl 127.0.0.1:8000/v1/chat/completions -H 'Content-Type: application/json' -d '{"model": "vlmtune", ...}'
    curl ... -H "Authorization: Bearer $(cat ~/.vlmtune-key)"                              # with a key

The model is served under the name `vlmtune` (`--served_model_name`), with the chat template saved in the output.
An adapter is served on its base under the same name (vLLM's `--lora-modules`); an adapter with fully trained
modules (the projector, by default) is refused with the command that makes it servable (`vlmtune export`).
A host beyond this machine needs an API key (--api_key_file, or $VLMTUNE_API_KEY); vLLM gets it in its
environment (VLLM_API_KEY, which vLLM's server reads), never on its command line, where `ps` would show it, and
then refuses every /v1 request without `Authorization: Bearer KEY`.
Needs vLLM in this Python (docs/serving.md); this process becomes the server (stop it by its PID).
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import sys
from pathlib import Path

from vlmtune.arguments import CommandParser
from vlmtune.core.outputs import ADAPTER_CONFIG, is_adapter
from vlmtune.errors import ArgumentError
from vlmtune.serving.vllm_backend import (
    DEFAULT_KV_CACHE_BYTES,
    import_vllm,
    in_process_environment,
    media_limits,
    model_impl_of,
    vllm_source,
)

LOOPBACK = ("127.0.0.1", "localhost", "::1")
KEY_VARIABLE = "VLMTUNE_API_KEY"


def read_secret(path: str, flag: str) -> str:
    """The secret in a file only its owner can read (its first line); ArgumentError naming what is wrong."""
    try:
        mode = os.stat(path).st_mode
        with open(path) as file:
            secret = file.readline().strip()
    except OSError as error:
        raise ArgumentError(f"{flag} {path}: {error.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ArgumentError(f"{flag} {path}: other users can read it; chmod 600 {path}")
    if not secret:
        raise ArgumentError(f"{flag} {path}: the file is empty")
    return secret


def api_key(args: argparse.Namespace) -> str | None:
    """The key requests must carry: --api_key_file's, else $VLMTUNE_API_KEY, else vLLM's own $VLLM_API_KEY; a
    host beyond loopback without one is refused."""
    if args.api_key_file:
        key = read_secret(args.api_key_file, "--api_key_file")
    else:
        key = os.environ.get(KEY_VARIABLE) or os.environ.get("VLLM_API_KEY") or None
    if key is None and args.host not in LOOPBACK:
        raise ArgumentError(
            f"--host {args.host} without an API key: anyone who reaches the port could use the model; give "
            f"--api_key_file FILE (chmod 600) or ${KEY_VARIABLE}, or keep 127.0.0.1 and use an SSH tunnel"
        )
    return key


def server_environment(args: argparse.Namespace) -> dict[str, str]:
    """The server's environment: this one, with the key as VLLM_API_KEY (vLLM's server reads it; the command
    line would show it in `ps`)."""
    key = api_key(args)
    return {**os.environ, "VLLM_API_KEY": key} if key else dict(os.environ)


def chat_template_file(folder: Path) -> Path | None:
    """The chat template the output was saved with (processor files: chat_template.jinja or .json)."""
    for name in ("chat_template.jinja", "chat_template.json"):
        if (folder / name).is_file():
            return folder / name
    return None


def template_argument(folder: Path) -> list[str]:
    path = chat_template_file(folder)
    if path is None:
        return []
    if path.suffix == ".json":  # vLLM reads a template file as the template text itself
        return ["--chat-template", json.loads(path.read_text())["chat_template"]]
    return ["--chat-template", str(path)]


def server_command(args: argparse.Namespace) -> list[str]:
    """The command line of vLLM's OpenAI server for the output in `args.output` (no key in it:
    `server_environment`); ArgumentError for a folder vLLM cannot serve or a host beyond loopback without a key."""
    api_key(args)
    output = Path(args.output)
    if not (output / "config.json").is_file() and not is_adapter(output):
        raise ArgumentError(f"{output}: neither a model folder (config.json) nor an adapter output ({ADAPTER_CONFIG})")
    source = vllm_source(str(output), base=args.base)
    common = [
        "--host", args.host, "--port", str(args.port), "--max-model-len", str(args.max_model_len),
        "--dtype", args.dtype, "--distributed-executor-backend", "uni",
        "--kv-cache-memory-bytes", str(args.kv_cache_bytes),
    ]  # fmt: skip
    template = template_argument(Path(source.processor_folder))
    common += ["--limit-mm-per-prompt", json.dumps(media_limits(source.entry.family))]
    common += ["--model-impl", model_impl_of(source.entry.family_id)]
    if source.adapter:
        model = [source.model_folder, "--served-model-name", f"{args.served_model_name}-base"]
        lora = ["--enable-lora", "--max-lora-rank", str(source.lora_rank)]
        lora += ["--lora-modules", f"{args.served_model_name}={source.adapter}"]
    else:
        model, lora = [source.model_folder, "--served-model-name", args.served_model_name], []
    server = [sys.executable, "-m", "vllm.entrypoints.openai.api_server"]
    return [*server, "--model", *model, *common, *template, *lora]


def build_parser() -> CommandParser:
    parser = CommandParser(
        prog="vlmtune serve", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("output", help="A vlmtune output: merged/full model folder, or an adapter output.")
    parser.add_argument("--host", default="127.0.0.1", help="Address to listen on (default: this machine only).")
    parser.add_argument("--port", type=int, default=8000, help="Port to listen on.")
    parser.add_argument("--max_model_len", type=int, default=4096, help="Longest prompt + reply in tokens.")
    parser.add_argument("--served_model_name", default="vlmtune", help="The `model` name requests use.")
    parser.add_argument("--base", help="Base checkpoint of an adapter (default: the one it was trained from).")
    parser.add_argument("--dtype", default="auto", help="auto (as stored), float32, bfloat16, float16.")
    parser.add_argument(
        "--kv_cache_bytes", type=int, default=DEFAULT_KV_CACHE_BYTES, help="Memory vLLM reserves for its KV cache."
    )
    parser.add_argument(
        "--api_key_file",
        help=f"A file (chmod 600) holding the key requests must send as `Authorization: Bearer KEY` (default: "
        f"${KEY_VARIABLE}); needed with a --host beyond this machine.",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = server_command(args)
    import_vllm()  # a clear one-line message when vLLM is missing, before anything starts
    in_process_environment()
    environment = server_environment(args)
    keyed = ", requests need the API key" if "VLLM_API_KEY" in environment else ""
    print(f"vlmtune serve: {args.output} on http://{args.host}:{args.port}/v1 as {args.served_model_name!r}{keyed}")
    sys.stdout.flush()
    os.execve(command[0], command, environment)  # this process becomes the server: its PID is the server's


if __name__ == "__main__":
    from vlmtune.apps.cli import main as cli_main

    sys.exit(cli_main(["serve", *sys.argv[1:]]))
