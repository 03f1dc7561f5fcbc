"""`vlmtune rollout-server MODEL`: vLLM sampling GRPO rollouts in its own process, for `vlmtune grpo --use_vllm
--vllm_mode server`; the trainer pushes the policy's weights to it after each optimizer step.

    vlmtune rollout-server tiny-qwen2-vl                       # 127.0.0.1:8010, a key made for it (path printed)
    vlmtune grpo --model_id tiny-qwen2-vl --use_vllm true --vllm_mode server ...        # finds that key itself
    CUDA_VISIBLE_DEVICES=0 vlmtune rollout-server Qwen/Qwen2-VL-2B-Instruct --host 0.0.0.0 --api_key_file KEY
    VLMTUNE_API_KEY=... vlmtune rollout-server ...                                    # the key from the environment

Closed by default: every request (even /health) must carry `Authorization: Bearer KEY`, or it gets 401 before
anything else is read. The key is --api_key_file's (chmod 600), else $VLMTUNE_API_KEY; without either a random
one is written to ~/.cache/vlmtune/rollout-server/PORT.key (chmod 600), which a trainer on this machine reads
for --vllm_server_port PORT. A trainer on another machine needs the same key (--vllm_server_api_key_file, or
$VLMTUNE_API_KEY). The key is never printed nor put on a command line.

The engine is the same `vllm.LLM` as `--vllm_mode colocate` (`vlmtune.grpo.vllm_rollouts.start_rollout_llm`),
in this process, which serves plain HTTP (Python's http.server): GET /health, GET /info (the model and family
served: the trainer refuses another), POST /generate (prompts with their media as PNG, `sampling_options`) and
POST /weights (a safetensors body, loaded by vLLM's in-place `reload_weights`, as colocate does;
`vlmtune.grpo.wire`). Requests run one at a time. Stop the server by its PID (it is this process).
"""

from __future__ import annotations

import argparse
import hmac
import json
import os
import secrets
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from vlmtune.arguments import CommandParser
from vlmtune.errors import ArgumentError
from vlmtune.grpo import wire

DEFAULT_PORT = 8010
KEY_VARIABLE = "VLMTUNE_API_KEY"


def default_key_file(port: int) -> Path:
    """Where a server on this machine leaves the key it made for itself (and a local trainer finds it)."""
    return Path.home() / ".cache" / "vlmtune" / "rollout-server" / f"{port}.key"


def server_key(api_key_file: str | None, port: int) -> tuple[str, str]:
    """(the key requests must carry, where it came from): --api_key_file, $VLMTUNE_API_KEY, or a new random key
    written to `default_key_file(port)` readable by its owner only."""
    from vlmtune.serving.serve import read_secret

    if api_key_file:
        return read_secret(api_key_file, "--api_key_file"), api_key_file
    if os.environ.get(KEY_VARIABLE):
        return os.environ[KEY_VARIABLE], f"${KEY_VARIABLE}"
    path = default_key_file(port)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(key + "\n")
    os.chmod(path, 0o600)  # an older file may have had other bits
    return key, str(path)


def checkpoint_shapes(folder: str) -> dict[str, list[int]]:
    """Name -> shape of every tensor in the served checkpoint's safetensors files (headers only)."""
    from safetensors import safe_open

    shapes = {}
    for path in sorted(Path(folder).glob("*.safetensors")):
        with safe_open(str(path), framework="pt") as file:
            shapes.update({name: list(file.get_slice(name).get_shape()) for name in file.keys()})
    return shapes


def weights_refusal(pushed: dict, shapes: dict[str, list[int]]) -> str | None:
    """Why pushed weights are not the served model's (a shape that differs, or no name in common), else None."""
    if shapes and not set(pushed) & set(shapes):
        return f"none of the {len(pushed)} pushed weights is a weight of the served model"
    for name, tensor in pushed.items():
        if name in shapes and list(tensor.shape) != shapes[name]:
            return f"pushed {name} has shape {list(tensor.shape)}, the served model's {shapes[name]}"
    return None


class RolloutService:
    """The engine and what the handlers need; `lock` runs one request on the engine at a time."""

    def __init__(self, llm, key: str, info: dict, shapes: dict[str, list[int]]):
        self.llm, self.key, self.info, self.shapes = llm, key, info, shapes
        self.lock = threading.Lock()

    def generate(self, body: dict) -> dict:
        from vlmtune.grpo.vllm_rollouts import sample_with_engine

        requests = wire.decode_requests(body["requests"])
        with self.lock:
            sampled = sample_with_engine(self.llm, requests, body["options"], bool(body["add_bos"]))
        return {"completions": sampled}

    def load_weights(self, data: bytes) -> tuple[int, dict]:
        from vlmtune.grpo.vllm_rollouts import reload_engine_weights

        weights = wire.decode_weights(data)
        refusal = weights_refusal(weights, self.shapes)
        if refusal:
            return HTTPStatus.CONFLICT, {"error": f"{refusal}: this server serves {self.info['model']}"}
        with self.lock:
            reload_engine_weights(self.llm, weights)
        return HTTPStatus.OK, {"loaded": len(weights)}


def handler_class(service: RolloutService):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args):  # noqa: A002 - one line per request is noise during a run
            pass

        def reply(self, status: int, payload: dict) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def authorized(self) -> bool:
            """The key, checked before the body is read: a request without it learns nothing."""
            given = self.headers.get(wire.KEY_HEADER, "")
            if given.startswith("Bearer ") and hmac.compare_digest(service.key.encode(), given[7:].encode()):
                return True
            self.close_connection = True
            self.reply(HTTPStatus.UNAUTHORIZED, {"error": "missing or wrong key (Authorization: Bearer KEY)"})
            return False

        def do_GET(self):  # noqa: N802 - http.server's name
            if not self.authorized():
                return
            if self.path == "/health":
                self.reply(HTTPStatus.OK, {"ok": True})
            elif self.path == "/info":
                self.reply(HTTPStatus.OK, service.info)
            else:
                self.reply(HTTPStatus.NOT_FOUND, {"error": f"no {self.path}"})

        def do_POST(self):  # noqa: N802
            if not self.authorized():
                return
            data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            try:
                if self.path == "/generate":
                    self.reply(HTTPStatus.OK, service.generate(json.loads(data)))
                elif self.path == "/weights":
                    self.reply(*service.load_weights(data))
                else:
                    self.reply(HTTPStatus.NOT_FOUND, {"error": f"no {self.path}"})
            except Exception as error:  # the trainer prints it in one line; the server keeps serving
                self.reply(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"{type(error).__name__}: {error}"})

    return Handler


def build_parser() -> CommandParser:
    parser = CommandParser(
        prog="vlmtune rollout-server", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("model", help="What the trainer trains: a registered id, or a full model folder.")
    parser.add_argument("--model_id", help="The registered model of a folder whose own files do not say it.")
    parser.add_argument("--host", default="127.0.0.1", help="Address to listen on (default: this machine only).")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="Port to listen on.")
    parser.add_argument("--max_model_len", type=int, default=4096, help="Longest prompt + completion in tokens.")
    parser.add_argument("--dtype", default="auto", help="auto (as stored), float32, bfloat16, float16: as training.")
    parser.add_argument(
        "--api_key_file",
        help=f"A file (chmod 600) holding the key every request must carry (default: ${KEY_VARIABLE}, else a new "
        "key in ~/.cache/vlmtune/rollout-server/PORT.key).",
    )
    return parser


def served_model(model: str, model_id: str | None) -> tuple:
    """(the registered entry, the full model folder vLLM loads); an adapter output is refused with the fix."""
    from vlmtune.core.modeling import checkpoint_path
    from vlmtune.core.outputs import is_adapter, source_entry

    entry = source_entry(model, model_id)
    if not Path(model).is_dir():
        return entry, checkpoint_path(entry)
    if is_adapter(model):
        raise ArgumentError(
            f"{model} is an adapter output: serve its base (the trainer pushes the merged weights), "
            f"e.g. vlmtune rollout-server {entry.model_id}"
        )
    return entry, model


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from vlmtune.serving.vllm_backend import NOT_IMPLEMENTED_FAMILIES, import_vllm

    entry, folder = served_model(args.model, args.model_id)
    if entry.family_id in NOT_IMPLEMENTED_FAMILIES:
        raise ArgumentError(f"vLLM does not implement {entry.family_id} (docs/serving.md)")
    key, key_source = server_key(args.api_key_file, args.port)
    import_vllm()
    from transformers import AutoConfig

    from vlmtune.grpo.vllm_rollouts import start_rollout_llm

    info = {
        "protocol": wire.PROTOCOL,
        "model": args.model,
        "model_id": entry.model_id,
        "family_id": entry.family_id,
        "model_type": AutoConfig.from_pretrained(folder).model_type,
        "pid": os.getpid(),
    }
    try:  # bound before the engine starts, so a busy port fails now, not after a minute of loading
        server = ThreadingHTTPServer((args.host, args.port), BaseHTTPRequestHandler)
    except OSError as error:
        raise ArgumentError(f"--host {args.host} --port {args.port}: {error.strerror}; pick another --port") from None
    llm = start_rollout_llm(folder, entry, args.max_model_len, dtype=args.dtype)
    server.RequestHandlerClass = handler_class(RolloutService(llm, key, info, checkpoint_shapes(folder)))
    print(
        f"vlmtune rollout-server: {args.model} on http://{args.host}:{args.port} (pid {os.getpid()}); requests "
        f"need the key in {key_source}"
    )
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    from vlmtune.apps.cli import main as cli_main

    sys.exit(cli_main(["rollout-server", *sys.argv[1:]]))
