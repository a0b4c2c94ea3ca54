"""README.md and docs/: the Python examples run as written, links and the MkDocs nav hold, and
the quoted random-search figures match a fresh run of the script that produces them."""

import json
import os
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
MKDOCS = ROOT / "mkdocs.yml"
PAGES = sorted(DOCS.rglob("*.md"))
FILES = [README, *PAGES]

#: A fenced block: its indentation, language and body (up to a closing fence as indented).
FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[^\n`]*)\n(?P<body>.*?)^(?P=indent)```[ \t]*$",
                   re.S | re.M)
LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", re.M)
#: Subprocesses: this checkout's sources, the CPU, no display.
ENV = {**os.environ, "MPLBACKEND": "Agg", "JAX_PLATFORMS": "cpu",
       "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"),
                                                   os.environ.get("PYTHONPATH")]))}

# Runs each file's blocks in order, in a fresh namespace and a fresh working directory per
# file, and writes {file: None or the traceback of the first block that failed}.
RUNNER = """
import json, os, sys, traceback
files, work, out = json.load(open(sys.argv[1], encoding="utf-8")), sys.argv[2], sys.argv[3]
results = {}
for i, (name, blocks) in enumerate(files):
    os.chdir(os.path.join(work, str(i)))
    namespace = {"__name__": "__main__"}
    try:
        for label, code in blocks:
            exec(compile(code, label, "exec"), namespace)
        results[name] = None
    except BaseException:
        results[name] = traceback.format_exc()
json.dump(results, open(out, "w", encoding="utf-8"))
"""


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def python_blocks(path: Path) -> list[tuple[str, str]]:
    """``[(label, code)]`` for each fenced ``python`` block of ``path``, in order."""
    text = path.read_text(encoding="utf-8")
    blocks = []
    for m in FENCE.finditer(text):
        if m["lang"].strip().split(" ")[0] != "python":
            continue
        line = text.count("\n", 0, m.start()) + 2  # the block's first line of code
        indent = len(m["indent"])
        code = "\n".join(l[indent:] for l in m["body"].splitlines())
        blocks.append((f"{rel(path)}, block at line {line}", code))
    return blocks


def prose(text: str) -> str:
    """``text`` without fenced blocks and inline code spans (where links are not links)."""
    text = FENCE.sub("", text)
    return re.sub(r"(`+).+?\1", "", text, flags=re.S)


def slug(heading: str) -> str:
    """The anchor MkDocs (Python-Markdown's toc) gives a heading."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = re.sub(r"[`*_]", "", text)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def anchors(path: Path) -> set[str]:
    return {slug(h) for h in HEADING.findall(FENCE.sub("", path.read_text(encoding="utf-8")))}


# -- the examples --------------------------------------------------------------------------

PAGES_RUNNABLE = [p for p in PAGES if python_blocks(p)]


def run_blocks(paths, tmp: Path) -> dict:
    """``{relative path: None or a traceback}``: the python blocks of each of ``paths``, run
    by :data:`RUNNER` in one fresh process (one namespace and working directory per file)."""
    spec = tmp / "blocks.json"
    spec.write_text(json.dumps([[rel(p), python_blocks(p)] for p in paths]), encoding="utf-8")
    for i in range(len(paths)):
        (tmp / "work" / str(i)).mkdir(parents=True)
    out = tmp / "results.json"
    proc = subprocess.run([sys.executable, "-c", RUNNER, str(spec), str(tmp / "work"), str(out)],
                          cwd=tmp, env=ENV, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and out.exists(), f"{proc.stdout}\n{proc.stderr}"
    return json.loads(out.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def page_results(tmp_path_factory):
    """README.md's and the pages' blocks, run once in one process (each file in its own
    namespace): a process per file would pay for importing JAX and scikit-learn every time."""
    return run_blocks([README, *PAGES_RUNNABLE], tmp_path_factory.mktemp("pages"))


def test_readme_examples_run_as_written(page_results):
    assert python_blocks(README), "README.md should show sgdlab in a python block"
    error = page_results[rel(README)]
    assert error is None, error


@pytest.mark.parametrize("path", PAGES_RUNNABLE, ids=rel)
def test_page_examples_run_as_written(path, page_results):
    error = page_results[rel(path)]
    assert error is None, error


# -- the shape of the documentation --------------------------------------------------------

def test_readme_is_a_front_page():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) < 200, f"README.md has {len(lines)} lines; move detail into docs/"


@pytest.mark.parametrize("path", FILES, ids=rel)
def test_relative_links_resolve(path):
    broken = []
    for target in LINK.findall(prose(path.read_text(encoding="utf-8"))):
        if re.match(r"[a-z][a-z0-9+.-]*:", target, re.I):  # https:, mailto:, ...
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists():
            broken.append(f"{target} (no file {dest})")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target} (no heading with anchor #{anchor} in {rel(dest)})")
    assert not broken, f"{rel(path)}: broken links: {broken}"


def nav_pages() -> list[str]:
    nav = MKDOCS.read_text(encoding="utf-8").split("\nnav:", 1)
    assert len(nav) == 2, "mkdocs.yml has no nav"
    return re.findall(r"([\w./-]+\.md)\b", nav[1])


def test_every_page_is_in_the_nav():
    listed = nav_pages()
    pages = [p.relative_to(DOCS).as_posix() for p in PAGES]
    assert sorted(set(pages) - set(listed)) == [], "pages missing from mkdocs.yml's nav"
    assert sorted(set(listed) - set(pages)) == [], "nav entries without a page in docs/"
    assert len(listed) == len(set(listed)), "a page is listed twice"


def test_images_are_small():
    for image in (DOCS / "images").glob("*"):
        assert image.stat().st_size < 300_000, f"{rel(image)} is over 300 KB"


# -- figures quoted from a script ----------------------------------------------------------

SEARCH_PAGE = DOCS / "gradients-and-search.md"
SEARCH_SCRIPT = ROOT / "benchmarks" / "random_search_figures.py"


def quoted_search_figures() -> dict[str, float]:
    text = " ".join(SEARCH_PAGE.read_text(encoding="utf-8").split())
    m = re.search(r"global search reaches (\d\.\d\d) validation accuracy \(chance: 0\.10\), "
                  r"local search (\d\.\d\d) and the weighted average (\d\.\d\d), against "
                  r"(\d\.\d\d) for 5 epochs of mini-batch SGD \(batch 32\)", text)
    assert m, f"the random-search paragraph of {rel(SEARCH_PAGE)} changed shape"
    assert rel(SEARCH_SCRIPT) in text, "the page should name the script of its figures"
    assert "1,000 attempts" in text
    names = ["random-global", "random-local", "random-weighted", "sgd-batch32-5epochs"]
    return dict(zip(names, map(float, m.groups())))


def test_random_search_figures_match_a_fresh_run():
    quoted = quoted_search_figures()
    proc = subprocess.run([sys.executable, str(SEARCH_SCRIPT), "--json"], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    fresh = json.loads(proc.stdout.strip().splitlines()[-1])
    assert {k: round(v, 2) for k, v in fresh.items()} == quoted
