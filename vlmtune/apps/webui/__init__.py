"""`vlmtune webui`: the whole workflow in a browser (pick a model and data, preview, train or GRPO, watch, chat,
merge, compose).

    pip install -e '.[webui]'          # gradio, once
    vlmtune webui                      # http://127.0.0.1:7860, this machine only
    vlmtune webui --port 8080
    vlmtune webui --host 0.0.0.0 --auth me:secret     # reachable from other machines: give it a password
    vlmtune webui --serve_python /work/vllm-venv/bin/python      # the Serve tab runs vLLM from its own venv

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
import sys

from vlmtune.arguments import CommandParser

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def build_parser() -> CommandParser:
    parser = CommandParser(
        prog="vlmtune webui", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1", help="Address to listen on (default: this machine only).")
    parser.add_argument("--port", type=int, default=7860, help="Port to listen on.")
    parser.add_argument(
        "--auth", help="user:password asked by the page; set it whenever --host reaches beyond this machine."
    )
    parser.add_argument(
        "--serve_python",
        default=sys.executable,
        help="The Python that runs `vlmtune serve` from the Serve tab: one where vLLM is installed "
        "(scripts/setup_vllm_venv.sh; default: this one).",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    from vlmtune.errors import ArgumentError

    args = build_parser().parse_args(argv)
    auth = None
    if args.auth:
        user, colon, password = args.auth.partition(":")
        if not (user and colon and password):
            raise ArgumentError("--auth must be user:password")
        auth = (user, password)
    if not (os.path.isfile(args.serve_python) and os.access(args.serve_python, os.X_OK)):
        raise ArgumentError(f"--serve_python {args.serve_python}: not an executable file")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home from a training machine
    try:
        import gradio  # noqa: F401  (an optional dependency: checked before anything else)
    except ImportError:
        raise ArgumentError("the web UI needs gradio: pip install 'vlmtune[webui]'") from None
    from vlmtune.apps.webui.app import CSS, build_app

    if args.host not in LOOPBACK:
        protection = "with the --auth password" if auth else "WITHOUT a password (add --auth user:password)"
        print(
            f"warning: listening on {args.host}: anyone who can reach this port can start runs and read files "
            f"here, {protection}",
            file=sys.stderr,
        )
    app = build_app(args.serve_python)
    print(f"vlmtune web UI: http://{'127.0.0.1' if args.host == '0.0.0.0' else args.host}:{args.port}", flush=True)
    app.launch(server_name=args.host, server_port=args.port, auth=auth, quiet=True, footer_links=[], css=CSS)
    return 0


if __name__ == "__main__":
    from vlmtune.apps.cli import main as cli_main

    sys.exit(cli_main(["webui", *sys.argv[1:]]))
