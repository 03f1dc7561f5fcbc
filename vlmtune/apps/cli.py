"""`vlmtune <command>`: the command-line front door.

vlmtune train --model_id tiny-qwen2-vl --data_path train.json --output_dir out
vlmtune validate --data_path train.json [--model_id tiny-qwen2-vl]    # every problem in the data, at once
vlmtune check tiny-qwen2-vl        # end-of-turn, parts, media tokens, capabilities from its own files
vlmtune preview --model_id tiny-qwen2-vl --data_path train.json       # what is trained, marked
vlmtune merge output/lora-run output/merged              # adapter + base -> standalone checkpoint
vlmtune chat output/merged --image a.png --prompt "Which digit?"
vlmtune models                     # same as python -m vlmtune.supported_models
vlmtune demo                       # the digits demo (what `make demo` runs)
vlmtune compose --vision tiny-siglip --llm tiny-qwen3 --output_dir composed   # a new VLM from parts
vlmtune webui                      # the same in a browser, http://127.0.0.1:7860
vlmtune grpo --model_id tiny-qwen2-vl --data_path prompts.jsonl --output_dir out   # RL with verifiable rewards
vlmtune dpo --model_id tiny-qwen2-vl --data_path pairs.jsonl --output_dir out      # preference pairs (DPO, ...)
vlmtune export --for vllm output/lora-run output/served   # a form vLLM serves (merged, or the adapter)
vlmtune serve output/served        # vLLM's OpenAI-compatible server on 127.0.0.1 (needs vLLM)
vlmtune rollout-server tiny-qwen2-vl   # vLLM sampling for `vlmtune grpo --use_vllm --vllm_mode server`

python -m vlmtune <command> ...    # the same (vlmtune/__main__.py)

A problem with the arguments or the data ends the command with one line naming it (exit status 2 for arguments,
1 for data), never a traceback; an unknown or misspelled flag names the closest valid ones:

    $ vlmtune train --lerning_rate 1
    vlmtune train: error: unknown flag --lerning_rate; did you mean --learning_rate?

Adding a command: put it in COMMANDS (its module and a help line); the module has `main(argv) -> int` and builds
its parser with `vlmtune.arguments.CommandParser` (argparse) or `vlmtune.arguments.DataclassParser` (argument
dataclasses, as HfArgumentParser) and parses with the usual `parser.parse_args(argv)` /
`parser.parse_args_into_dataclasses(args=argv)`. That is all it takes for the one-line errors above: unknown
flags with close matches, missing flags and bad values (argparse's errors) become `ArgumentError`, which `main`
below prints with exit status 2. Bad values found later are raised as `ArgumentError` too, bad data as
`DataError` or `BadSample` (exit 1). Its `if __name__ == "__main__":` calls `main([command, *sys.argv[1:]])`,
so `python -m vlmtune.<module>` answers the same way.
"""

from __future__ import annotations

import sys

COMMANDS = {
    "train": ("vlmtune.train", "finetune a registered model (vlmtune train --help)"),
    "validate": ("vlmtune.apps.validate", "check a data file and report every problem at once"),
    "check": ("vlmtune.apps.check", "derive and check a checkpoint's template, parts and tokens (no weights)"),
    "preview": ("vlmtune.apps.preview", "show samples as the model sees them, trained spans marked"),
    "merge": ("vlmtune.serving.merge", "merge a LoRA adapter output into its base model (vlmtune merge --help)"),
    "chat": ("vlmtune.serving.chat", "answer a prompt with an image/video, or a data file (vlmtune chat --help)"),
    "models": ("vlmtune.supported_models", "list the registered models and families"),
    "demo": ("vlmtune.apps.demo", "finetune a tiny model on the bundled digits, on CPU"),
    "compose": ("vlmtune.compose.build", "build a VLM from a vision encoder + a causal LM (vlmtune compose --help)"),
    "webui": (
        "vlmtune.apps.webui",
        "the whole workflow in a browser (pip install 'vlmtune[webui]'; vlmtune webui --help)",
    ),
    "grpo": ("vlmtune.grpo", "GRPO with verifiable rewards after SFT (vlmtune grpo --help)"),
    "dpo": ("vlmtune.dpo", "preference optimization: DPO, IPO, SimPO, ORPO, ... (vlmtune dpo --help)"),
    "export": ("vlmtune.serving.export", "write the form of an output that vLLM serves (vlmtune export --help)"),
    "serve": ("vlmtune.serving.serve", "serve an output with vLLM's OpenAI-compatible server (vlmtune serve --help)"),
    "rollout-server": (
        "vlmtune.grpo.rollout_server",
        "vLLM sampling GRPO rollouts in its own process (vlmtune grpo --vllm_mode server; --help)",
    ),
}


def usage() -> str:
    lines = ["usage: vlmtune <command> [arguments]", "", "commands:"]
    width = max(len(name) for name in COMMANDS)
    lines += [f"  {name:<{width}} {help_text}" for name, (_, help_text) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"vlmtune: unknown command {command!r}\n\n{usage()}", file=sys.stderr)
        return 2
    import logging
    from importlib import import_module

    # bitsandbytes (imported by transformers' TrainingArguments) warns on every start that its optional
    # `kernels` package for a faster CPU 4-bit path is missing; it concerns CPU QLoRA speed only.
    logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)

    from vlmtune.errors import ArgumentError, BadSample, DataError, ServiceError, UnknownNameError

    module = import_module(COMMANDS[command][0])
    try:
        return module.main(rest) or 0
    except ArgumentError as error:
        print(f"vlmtune {command}: error: {error}", file=sys.stderr)
        return 2
    except UnknownNameError as error:  # an unknown model id or family, with close matches
        print(f"vlmtune {command}: error: {error.args[0]}", file=sys.stderr)
        return 2
    except (DataError, BadSample, ServiceError) as error:
        print(f"vlmtune {command}: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
