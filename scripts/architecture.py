"""The layers of vlmtune, read from its imports: the map every module belongs to, the arrows between layers, and the
picture in docs/architecture.md (generated here, kept equal by tests/test_layers.py).

    python scripts/architecture.py            # rewrite the generated picture in docs/architecture.md
    python scripts/architecture.py --check    # exit 1 when an import points up a layer or the picture is stale

A module may import from its own layer and the layers below it. Imports under `if TYPE_CHECKING:` (type hints
only) and under `if __name__ == "__main__":` (the launch line of `python -m vlmtune.<module>`, which hands the
command to the CLI's one-line errors) are not dependencies of the module and are not counted.
"""

from __future__ import annotations

import ast
import sys
import textwrap
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "vlmtune"
DOC = ROOT / "docs" / "architecture.md"
BEGIN, END = "<!-- layers:start (python scripts/architecture.py) -->", "<!-- layers:end -->"

# Bottom to top: (layer, what it holds). A module belongs to the layer of the longest prefix below that names it.
LAYERS = [
    ("bottom", "error types, progress"),
    ("data", "records -> Samples, media, data checks, datasets"),
    ("config", "argument dataclasses and parsers"),
    ("collation", "the masking core: render, reply spans, labels, truncation, padding"),
    ("registry", "family records, loaders, family collators, tiny models, compose"),
    ("core", "model loading, trainable parts, the Trainer, packing, generation, evaluation"),
    ("serving", "merge, export, vLLM, chat"),
    ("methods", "the shared run pipeline, SFT, GRPO, DPO"),
    ("apps", "the CLI, validate, preview, web UI, demos"),
]
PREFIXES = {
    "vlmtune": "bottom",
    "vlmtune.errors": "bottom",
    "vlmtune.progress": "bottom",
    "vlmtune.data": "data",
    "vlmtune.datasets": "data",
    "vlmtune.arguments": "config",
    "vlmtune.collators": "registry",
    "vlmtune.collators.__init__": "collation",
    "vlmtune.collators.base": "collation",
    "vlmtune.collators.alignment": "collation",
    "vlmtune.collators.replies": "collation",
    "vlmtune.loaders": "registry",
    "vlmtune.supported_models": "registry",
    "vlmtune.coverage": "registry",
    "vlmtune.compose": "registry",
    "vlmtune.core": "core",
    "vlmtune.serving": "serving",
    "vlmtune.pipeline": "methods",
    "vlmtune.train": "methods",
    "vlmtune.grpo": "methods",
    "vlmtune.dpo": "methods",
    "vlmtune.apps": "apps",
}
RANK = {name: rank for rank, (name, _) in enumerate(LAYERS)}


def module_name(path: Path) -> str:
    """vlmtune/core/trainer.py -> vlmtune.core.trainer; a package's __init__ keeps its own name with .__init__."""
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def layer_of(module: str) -> str:
    """The layer of a module (a `__main__` module is a launch line: apps)."""
    if module.endswith(".__main__"):
        return "apps"
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        if prefix in PREFIXES:
            return PREFIXES[prefix]
    raise KeyError(f"{module}: in no layer; add its prefix to PREFIXES in scripts/architecture.py")


def is_skipped_block(node: ast.If) -> bool:
    """`if TYPE_CHECKING:` or `if __name__ == "__main__":`."""
    test = node.test
    if isinstance(test, ast.Name) and test.id == "TYPE_CHECKING":
        return True
    return (
        isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
        and any(isinstance(c, ast.Constant) and c.value == "__main__" for c in test.comparators)
    )


def imported_modules(source: str) -> set[str]:
    """The vlmtune modules a module imports (at any depth, functions included), skipping the blocks above."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and is_skipped_block(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("vlmtune"):
            # `from vlmtune.apps import demo` imports the module vlmtune.apps.demo
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("vlmtune"))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(source))
    return found


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """module -> the vlmtune modules it imports (names that are not modules, e.g. classes, resolve to theirs)."""
    modules = {module_name(path): path for path in sorted(package.rglob("*.py"))}
    known = {name.removesuffix(".__init__") for name in modules}

    def resolve(target: str) -> str:
        while target not in known and "." in target:
            target = target.rsplit(".", 1)[0]  # vlmtune.errors.DataError -> vlmtune.errors
        return target

    return {name: {resolve(t) for t in imported_modules(path.read_text())} for name, path in modules.items()}


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """Every import that points from a layer to a higher one, as 'a (layer) -> b (layer)'."""
    found = []
    for module, targets in sorted(graph.items()):
        for target in sorted(targets):
            here, there = layer_of(module), layer_of(target)
            if RANK[there] > RANK[here]:
                found.append(f"{module} ({here}) -> {target} ({there})")
    return found


def picture(graph: dict[str, set[str]]) -> str:
    """The layers top to bottom, each with its modules and the lower layers it imports from (read from the code)."""
    members: dict[str, list[str]] = defaultdict(list)
    uses: dict[str, set[str]] = defaultdict(set)
    for module, targets in graph.items():
        layer = layer_of(module)
        if not module.endswith(("__init__", "__main__")):
            members[layer].append(module.removeprefix("vlmtune."))
        uses[layer].update(layer_of(t) for t in targets if layer_of(t) != layer)
    lines = []
    for layer, holds in reversed(LAYERS):
        below = sorted(uses[layer], key=RANK.get, reverse=True)
        lines.append(f"{layer:<10} {holds}")
        lines.append(f"{'':<10} imports: {', '.join(below) if below else '(nothing of vlmtune)'}")
        indent = " " * 11
        lines += textwrap.wrap(", ".join(sorted(members[layer])), 116, initial_indent=indent, subsequent_indent=indent)
        lines.append("")
    return "```\n" + "\n".join(lines).rstrip() + "\n```"


def with_picture(doc: str, graph: dict[str, set[str]]) -> str:
    head, _, rest = doc.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return f"{head}{BEGIN}\n{picture(graph)}\n{END}{tail}"


def main(argv: list[str]) -> int:
    graph = import_graph()
    problems = upward_imports(graph)
    for problem in problems:
        print(f"import points up a layer: {problem}", file=sys.stderr)
    doc = DOC.read_text()
    if "--check" in argv:
        if with_picture(doc, graph) != doc:
            print(f"{DOC.name}: the picture is stale (python scripts/architecture.py)", file=sys.stderr)
            return 1
        return 1 if problems else 0
    DOC.write_text(with_picture(doc, graph))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
