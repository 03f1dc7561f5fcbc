"""`vlmtune webui`: the whole workflow in a browser (pick a model and data, preview, train or GRPO, watch, chat,
merge, compose).

    pip install -e '.[webui]'          # gradio, once
    vlmtune webui                      # prints http://127.0.0.1:7860/?token=...: open that URL
    vlmtune webui --root ~/project     # the page reads and writes files under ~/project only (default: here)
    ssh -L 7860:127.0.0.1:7860 gpu-box 'vlmtune webui'    # from a laptop: the printed URL works there too
    vlmtune webui --host 0.0.0.0 --token_file ~/.vlmtune-token    # other machines: your token (chmod 600)
    vlmtune webui --serve_python /work/vllm-venv/bin/python      # the Serve tab runs vLLM from its own venv

Whoever reaches the page runs code as you (it starts runs and loads reward plugins, i.e. Python files), so it is
locked by default, as Jupyter is: a random token per start (or VLMTUNE_WEBUI_TOKEN, or --token_file), carried
by the printed URL; every request without it is refused (vlmtune.apps.webui.guard), and so is every cross-site
request. A password (VLMTUNE_WEBUI_PASSWORD or --password_file; never on the command line, where `ps` shows it)
lets a browser in without the token. Beyond this machine (--host) only with a token or a password.

The page is a thin front over the same code as the commands: the Train and GRPO forms are generated from
`vlmtune train`'s and `vlmtune grpo`'s argument dataclasses, Start runs the real command as a separate process
(which keeps running when the page is closed; reopening finds it from the files in its output folder, see
vlmtune.apps.webui.runs), the data report is `vlmtune validate`'s, the preview `vlmtune preview`'s, the chat
`vlmtune chat`'s loading and generation, Merge runs `vlmtune merge`, Compose `vlmtune compose`, and Serve
`vlmtune serve` (vLLM's OpenAI-compatible server, with the Python given by --serve_python when this one has no
vLLM) and `vlmtune export --for vllm`.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import sys
from dataclasses import dataclass

from vlmtune.arguments import CommandParser
from vlmtune.errors import ArgumentError
from vlmtune.serving.serve import read_secret

LOOPBACK = ("127.0.0.1", "localhost", "::1")
ANY_ADDRESS = ("0.0.0.0", "::", "")
TOKEN_VARIABLE, PASSWORD_VARIABLE = "VLMTUNE_WEBUI_TOKEN", "VLMTUNE_WEBUI_PASSWORD"


def build_parser() -> CommandParser:
    parser = CommandParser(
        prog="vlmtune webui", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1", help="Address to listen on (default: this machine only).")
    parser.add_argument("--port", type=int, default=7860, help="Port to listen on.")
    parser.add_argument(
        "--root",
        default=".",
        help="The workspace: the page reads and writes files under this folder only, and runs in it "
        "(default: the current folder).",
    )
    parser.add_argument(
        "--token_file",
        help=f"A file holding the token (default: ${TOKEN_VARIABLE}, else a new random one per start).",
    )
    parser.add_argument(
        "--no_token",
        action="store_true",
        help="No token: every account on this machine (and any local program) can use the page. Loopback only.",
    )
    parser.add_argument(
        "--password_file",
        help=f"A file holding a password the browser may give instead of the token (default: ${PASSWORD_VARIABLE}).",
    )
    parser.add_argument("--auth", help="Refused: a password on the command line shows in `ps`; use --password_file.")
    parser.add_argument(
        "--serve_python",
        default=sys.executable,
        help="The Python that runs `vlmtune serve` from the Serve tab: one where vLLM is installed "
        "(scripts/setup_vllm_venv.sh; default: this one).",
    )
    return parser


@dataclass(frozen=True)
class Access:
    """Who may use the page: the token (None: --no_token) and the password (None: none)."""

    token: str | None
    password: str | None


def access(args: argparse.Namespace) -> Access:
    """The token and password from the arguments and the environment; ArgumentError when they cannot work."""
    if args.auth is not None:
        raise ArgumentError(
            "--auth user:password puts the password where `ps` and the shell history show it: "
            f"put it in a file (--password_file FILE, chmod 600) or in ${PASSWORD_VARIABLE}"
        )
    token = read_secret(args.token_file, "--token_file") if args.token_file else os.environ.get(TOKEN_VARIABLE)
    password = (
        read_secret(args.password_file, "--password_file") if args.password_file else os.environ.get(PASSWORD_VARIABLE)
    )
    if args.no_token:
        if token:
            raise ArgumentError(f"--no_token with a token (--token_file or ${TOKEN_VARIABLE}): choose one")
        if args.host not in LOOPBACK:
            raise ArgumentError(
                f"--host {args.host} --no_token: anyone who reaches the port would run code as you; "
                "keep the token (the default), or use an SSH tunnel to 127.0.0.1 (docs/webui.md)"
            )
        return Access(None, password or None)
    if token and not re.fullmatch(r"[A-Za-z0-9._~-]{16,}", token):  # it travels in URLs and a cookie
        raise ArgumentError(
            f"the token (--token_file or ${TOKEN_VARIABLE}) must be 16 or more letters, digits, - _ . ~; make one: "
            "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    return Access(token or secrets.token_urlsafe(32), password or None)


def page_url(host: str, port: int, token: str | None) -> str:
    """The URL to open (with the token); an any-address host is reached as 127.0.0.1 on this machine."""
    host = "127.0.0.1" if host in ANY_ADDRESS else host
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/" + (f"?token={token}" if token else "")


def web_app(blocks, host: str, port: int, allowed: Access, css: str = ""):
    """The server's ASGI app: the page mounted in a FastAPI app whose one middleware, the guard, sees every
    request before gradio does (vlmtune.apps.webui.guard)."""
    import gradio as gr
    from fastapi import FastAPI
    from starlette.middleware import Middleware

    from vlmtune.apps.webui.guard import Guard

    guard = Middleware(Guard, token=allowed.token, password=allowed.password, port=port, loopback=host in LOOPBACK)
    app = FastAPI(middleware=[guard], openapi_url=None, docs_url=None, redoc_url=None)
    return gr.mount_gradio_app(app, blocks, "/", server_name=host, server_port=port, footer_links=[], css=css)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    allowed = access(args)
    if not (os.path.isfile(args.serve_python) and os.access(args.serve_python, os.X_OK)):
        raise ArgumentError(f"--serve_python {args.serve_python}: not an executable file")
    if not os.path.isdir(args.root):
        raise ArgumentError(f"--root {args.root}: no such folder")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home from a training machine
    try:
        import gradio  # noqa: F401  (an optional dependency: checked before anything else)
    except ImportError:
        raise ArgumentError("the web UI needs gradio: pip install 'vlmtune[webui]'") from None
    import uvicorn

    from vlmtune.apps.webui import workspace
    from vlmtune.apps.webui.app import CSS, build_app

    serve_python = os.path.abspath(args.serve_python)  # as given, before the change of folder
    os.chdir(args.root)  # relative paths in the forms, and the runs' own, are the workspace's
    workspace.ROOT = os.getcwd()
    app = web_app(build_app(serve_python), args.host, args.port, allowed, CSS)
    if args.host not in LOOPBACK:
        print(
            f"note: listening on {args.host}: the token (and password) cross the network unencrypted; "
            "an SSH tunnel to 127.0.0.1 does not (docs/webui.md)",
            file=sys.stderr,
        )
    if allowed.token is None:
        print("note: --no_token: every account on this machine can use this page (and run code as you)")
    print(f"vlmtune web UI: {page_url(args.host, args.port, allowed.token)}  (files under {workspace.ROOT})")
    sys.stdout.flush()
    # Open event streams (a page left open) must not keep Ctrl-C waiting.
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", timeout_graceful_shutdown=5)
    return 0


if __name__ == "__main__":
    from vlmtune.apps.cli import main as cli_main

    sys.exit(cli_main(["webui", *sys.argv[1:]]))
