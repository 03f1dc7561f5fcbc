"""Imports point one way: apps -> methods -> serving -> core -> registry -> collation -> config -> data -> bottom
(scripts/architecture.py holds the map; docs/architecture.md shows the picture it draws)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import architecture  # noqa: E402


def test_no_import_points_up_a_layer():
    assert architecture.upward_imports(architecture.import_graph()) == []


def test_every_module_has_a_layer():
    for module in architecture.import_graph():
        assert architecture.layer_of(module) in architecture.RANK


def test_an_inverted_import_is_caught(tmp_path):
    """A data module that imports the SFT command (a deliberately inverted import) is named, with both layers."""
    package = tmp_path / "vlmtune"
    (package / "data").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "data" / "__init__.py").write_text("")
    (package / "data" / "formats.py").write_text("def read():\n    from vlmtune.train import train\n")
    (package / "train.py").write_text("from vlmtune.data.formats import read\n")
    old_root = architecture.ROOT
    architecture.ROOT = tmp_path
    try:
        graph = architecture.import_graph(package)
    finally:
        architecture.ROOT = old_root
    assert architecture.upward_imports(graph) == ["vlmtune.data.formats (data) -> vlmtune.train (methods)"]


@pytest.mark.parametrize(
    "source, expected",
    [
        ("if TYPE_CHECKING:\n    from vlmtune.train import train\n", set()),
        ('if __name__ == "__main__":\n    from vlmtune.apps.cli import main\n', set()),
        ("def f():\n    from vlmtune.core import trainer\n", {"vlmtune.core", "vlmtune.core.trainer"}),
        ("import vlmtune.data.video as video\n", {"vlmtune.data.video"}),
    ],
)
def test_which_imports_count(source, expected):
    assert architecture.imported_modules(source) == expected


def test_a_module_outside_every_layer_is_refused():
    with pytest.raises(KeyError, match="in no layer"):
        architecture.layer_of("elsewhere.module")


def test_the_architecture_picture_is_current():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "architecture.py"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
