"""The documentation cannot rot: every ```python block of README.md and docs/*.md runs here on
the CPU, and no user-facing file points to material users do not have.

A block is skipped only when the line before its opening fence is `<!-- no-test -->` (for GPU-
only or torchrun snippets), or `<!-- requires: module -->` and that optional module does not
import (e.g. mmengine, which the development environment installs). The blocks of one file run
in order in one namespace, as a reader runs them; a failure names the file and the line.
"""

import functools
import importlib.util
import pathlib
import re
import textwrap

import pytest
import torch

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
OP_PAGES = ("awing.md", "coordinate_losses.md", "graph.md", "metrics.md", "backends.md",
            "mmpose.md")
SKIP_MARK = "<!-- no-test -->"
_REQUIRES = re.compile(r"<!-- requires: ([\w.]+(?:, *[\w.]+)*) -->")
_FENCE = re.compile(r"^([ \t]*)```python[ \t]*\n(.*?)^\1```[ \t]*$", re.S | re.M)
# Pointers to files that exist only in the development set-up, never in the repository (spelled
# in parts, so that a search of the sources for them finds no reference here).
FORBIDDEN = ("../" "shared", "/work/" "shared", "SPEC" ".md")
SCANNED = ("README.md", "CONTRIBUTING.md", "docs", "landmark_kernels", "triton_kernels", "csrc")
TEXT_SUFFIXES = {".md", ".py", ".txt", ".h", ".cpp", ".cu", ".cuh"}


def python_blocks(text):
    """[(line of the first code line, code, marker)] for each ```python block of `text`; marker
    is the HTML comment on the line before the fence, or None."""
    blocks = []
    for match in _FENCE.finditer(text):
        before = text[:match.start()].rstrip().splitlines()
        marker = before[-1].strip() if before and before[-1].strip().startswith("<!--") else None
        line = text.count("\n", 0, match.start()) + 2
        blocks.append((line, textwrap.dedent(match.group(2)), marker))
    return blocks


def _missing_module(marker):
    """The first module a `<!-- requires: ... -->` marker names that does not import, or None."""
    found = _REQUIRES.fullmatch(marker or "")
    for name in (found.group(1).split(",") if found else ()):
        if importlib.util.find_spec(name.strip()) is None:
            return name.strip()
    return None


def test_block_extraction():
    text = ("# t\n```python\na = 1\n```\n\n<!-- no-test -->\n```python\nraise SystemExit\n```\n"
            "- item:\n\n  ```python\n  b = a + 1\n  ```\n```bash\nls\n```\n"
            "<!-- requires: no_such_module_here -->\n```python\nimport no_such_module_here\n```\n")
    assert python_blocks(text) == [
        (3, "a = 1\n", None), (8, "raise SystemExit\n", SKIP_MARK), (13, "b = a + 1\n", None),
        (20, "import no_such_module_here\n", "<!-- requires: no_such_module_here -->")]
    assert _missing_module("<!-- requires: no_such_module_here -->") == "no_such_module_here"
    assert _missing_module("<!-- requires: pytest, re -->") is None


def _runnable(path):
    """The blocks of `path` to run: not marked no-test, their required modules present."""
    return [(line, code) for line, code, marker in
            python_blocks(path.read_text(encoding="utf-8"))
            if marker != SKIP_MARK and _missing_module(marker) is None]


@pytest.mark.parametrize("path", [p for p in DOC_FILES if _runnable(p)],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_python_blocks_run(path, monkeypatch):
    # torch.compile snippets trace with the aot_eager backend: the same capture (fullgraph,
    # dynamic shapes, fake kernels, autograd) without Inductor's code generation, which costs
    # tens of seconds on a small CPU and is what each op's own compile test covers.
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="aot_eager"))
    namespace = {"__name__": "__docs__"}
    for line, code in _runnable(path):
        # Padded so that a traceback's line number is the line in the Markdown file.
        source = "\n" * (line - 1) + code
        exec(compile(source, str(path.relative_to(ROOT)), "exec"), namespace)


def test_every_op_page_has_tested_code():
    untested = [name for name in OP_PAGES if not _runnable(ROOT / "docs" / name)]
    assert not untested, f"docs pages without a tested ```python block: {untested}"
    assert len(_runnable(ROOT / "README.md")) >= 3


_LINK = re.compile(r"\]\(([^()\s]+)\)")


def _slug(heading):
    """GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces -> '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _prose(path):
    """The Markdown of `path` without its fenced code blocks."""
    return re.sub(r"^[ \t]*```.*?^[ \t]*```", "", path.read_text(encoding="utf-8"),
                  flags=re.S | re.M)


def _anchors(path):
    return {_slug(h) for h in re.findall(r"^#+ (.*)$", _prose(path), flags=re.M)}


def _broken_links(path):
    """The relative links of `path` (outside code) whose file, or heading anchor, is missing."""
    broken = []
    for link in _LINK.findall(re.sub(r"`[^`\n]*`", "", _prose(path))):
        if "://" in link or link.startswith("mailto:"):
            continue
        target, _, anchor = link.partition("#")
        target = (path.parent / target).resolve() if target else path
        if not target.exists() or (anchor and target.is_file()
                                   and anchor not in _anchors(target)):
            broken.append(link)
    return broken


def test_link_checker(tmp_path):
    assert _slug("The module `lk.nn.AdaptiveWingLoss`") == "the-module-lknnadaptivewingloss"
    assert _slug("Units: coord_scale, and SoftWing") == "units-coord_scale-and-softwing"
    (tmp_path / "b.md").write_text("# B page\n## The `x.y` part\n")
    (tmp_path / "a.md").write_text(
        "[ok](b.md) [ok](b.md#the-xy-part) [ok](#a) [web](https://x.org/#y) `[no](c.md)`\n"
        "# A\n[bad](c.md) [bad](b.md#nope)\n```python\nf()[0](**kw)\n```\n")
    assert _broken_links(tmp_path / "a.md") == ["c.md", "b.md#nope"]


@pytest.mark.parametrize("path", DOC_FILES + [ROOT / "CONTRIBUTING.md"],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_links_resolve(path):
    """Every relative link points to a file of the repository (and an anchor to a heading)."""
    broken = _broken_links(path)
    assert not broken, f"broken links in {path.name}: {broken}"


def _scanned_files():
    for name in SCANNED:
        path = ROOT / name
        if path.is_file():
            yield path
        elif path.is_dir():
            yield from (p for p in sorted(path.rglob("*"))
                        if p.is_file() and p.suffix in TEXT_SUFFIXES)


def test_no_pointer_to_files_users_do_not_have():
    files = list(_scanned_files())
    assert len(files) > 20  # the scan found the package, not an empty tree
    hits = [f"{p.relative_to(ROOT)}:{n}: {line.strip()}" for p in files
            for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
            if any(word in line for word in FORBIDDEN)]
    assert not hits, "user-facing files mention material outside the repository:\n" + \
        "\n".join(hits)
