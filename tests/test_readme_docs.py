"""README.md is a short front door; the details live in docs/*.md, each page opening with a runnable example."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
# [text](target) and ![alt](target); the target ends at whitespace or the closing parenthesis
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
MAX_PROSE_LINES = 5  # between a page's title and its first ```bash block


def test_readme_is_short():
    lines = README.read_text().splitlines()
    assert len(lines) <= 300, f"README.md has {len(lines)} lines; move details into docs/"


def test_readme_lists_every_command():
    from vlmtune.apps.cli import COMMANDS

    section = README.read_text().split("\n## Commands\n", 1)[1].split("\n## ", 1)[0]
    missing = [name for name in COMMANDS if f"`vlmtune {name}`" not in section]
    assert not missing, f"README's command list lacks {missing}"


@pytest.mark.parametrize("page", DOCS, ids=lambda page: page.name)
def test_docs_page_starts_with_a_bash_example(page):
    lines = page.read_text().splitlines()
    assert lines and lines[0].startswith("# "), f"{page.name}: the first line is not a '# title'"
    prose = 0
    for line in lines[1:]:
        if line.startswith("```"):
            assert line.strip() == "```bash", f"{page.name}: the first code block is {line.strip()!r}, not ```bash"
            return
        if line.strip():
            prose += 1
            assert prose <= MAX_PROSE_LINES, f"{page.name}: more than {MAX_PROSE_LINES} lines before its ```bash block"
    pytest.fail(f"{page.name}: no ```bash block")


def without_code(text: str) -> str:
    """The text outside fenced code blocks (a link-like string in code is not a link)."""
    return "".join(part for i, part in enumerate(re.split(r"^```.*$", text, flags=re.MULTILINE)) if i % 2 == 0)


@pytest.mark.parametrize("page", [README, *DOCS], ids=lambda page: page.name)
def test_relative_links_point_at_files(page):
    broken = []
    for target in LINK.findall(without_code(page.read_text())):
        if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # a URL (https:, mailto:) or an anchor on the same page
        path = target.split("#", 1)[0]
        if not (page.parent / path).exists():
            broken.append(target)
    assert not broken, f"{page.name}: links to missing files: {broken}"
