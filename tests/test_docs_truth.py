"""The docs say what the code is.

* The module table of ``docs/architecture.md`` matches the tree: every module and package of
  ``msus/`` has a row (or is named in its package's row), and every path a row names exists.
* Every ``MSUS_*`` environment variable msus reads is documented (README or ``docs/``), and every
  documented one is read by the project.
* Every ``msus`` verb (and sub-verb) the README shows exists in ``msus --help``.

How the table is read: the first cell of a row lists paths in backticks; a full path has a ``/``
or is the cell's first path (``app.py``), a bare name (``http.py``) lies in the folder of the
path before it.  A row whose first cell lists a folder (``msus/synth/``) may name that folder's
modules in its second cell (``params.py``, ``pages/``).  A listed package covers its
``__init__.py``; a folder named in a second cell covers everything under it.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "msus"
ARCH = ROOT / "docs" / "architecture.md"
TICKED = re.compile(r"`([^`\n]+)`")  # an inline code span, on one line
FENCED = re.compile(r"```.*?```", re.S)
FILE_OR_DIR = re.compile(r"^[\w.-]+(/[\w.-]+)*(\.py|/)$")
ENV_NAME = re.compile(r"MSUS_[A-Z0-9_]*[A-Z0-9](?![A-Z0-9_])")  # not a prefix such as MSUS_PACS_*
#: MSUS_* strings in msus/ that are not environment variables (what each one is).
NOT_ENVIRONMENT = {"MSUS_PHANTOM": "the ImplementationVersionName the phantom DICOM files carry"}


# ---- the module table ---------------------------------------------------------------------------
def _table_rows() -> list[tuple[str, str]]:
    """(first cell, second cell) of each row of the first ``| module | owns |`` table."""
    rows, inside = [], False
    for line in ARCH.read_text(encoding="utf-8").splitlines():
        if line.startswith("| module | owns |"):
            inside = True
            continue
        if not inside:
            continue
        if not line.startswith("|"):
            break
        if line.startswith("|---"):
            continue
        first, _, rest = line[1:].partition(" | ")
        rows.append((first.strip(), rest.rstrip().removesuffix("|").strip()))
    assert rows, f"{ARCH.relative_to(ROOT)}: no '| module | owns |' table found"
    return rows


def _row_paths(first: str, second: str) -> tuple[list[str], list[str]]:
    """Paths a row lists (first cell) and names (second cell, relative to the row's folder)."""
    listed: list[str] = []
    folder = ""
    for tok in TICKED.findall(first):
        if "/" in tok or not listed:
            path = tok
        else:
            path = folder + tok
        listed.append(path)
        folder = path if path.endswith("/") else path.rpartition("/")[0] + "/" if "/" in path else ""
    base = next((p for p in reversed(listed) if p.endswith("/")), None)
    own = {p.rstrip("/").rpartition("/")[2]: p for p in listed}
    named: list[str] = []
    for tok in TICKED.findall(second):
        if not FILE_OR_DIR.match(tok):
            continue
        if tok.rstrip("/") in own:  # the row's own path, by its name
            continue
        if tok.startswith(("msus/", "tests/", "benchmarks/")):
            named.append(tok)
        elif base is not None and "/" not in tok.rstrip("/"):
            named.append(base + tok)
    return listed, named


def _table() -> tuple[dict[str, str], set[str]]:
    """Every path of the table → the row naming it; and the paths the table covers."""
    where: dict[str, str] = {}
    covered: set[str] = set()
    for first, second in _table_rows():
        listed, named = _row_paths(first, second)
        for p in listed + named:
            where.setdefault(p, first)
        for p in listed + named:
            if p.endswith("/"):
                covered.add(p + "__init__.py")
                if p in named:  # a folder a row names is covered whole
                    covered.update(str(f.relative_to(ROOT)) for f in (ROOT / p).rglob("*.py"))
            else:
                covered.add(p)
    return where, covered


def test_every_module_of_msus_has_a_row():
    _, covered = _table()
    modules = sorted(str(p.relative_to(ROOT)) for p in PKG.rglob("*.py") if "__pycache__" not in p.parts)
    missing = [m for m in modules if m not in covered]
    assert not missing, (
        f"{ARCH.relative_to(ROOT)}: the module table has no row for {len(missing)} module(s): "
        + ", ".join(missing)
        + " — add a row `| `msus/….py` | what it owns |`, or name the module in its package's row"
    )


def test_every_path_in_the_table_exists():
    where, _ = _table()
    stale = [f"{p} (row {first!r})" for p, first in where.items() if not (ROOT / p).exists()]
    assert not stale, (
        f"{ARCH.relative_to(ROOT)}: the module table names {len(stale)} path(s) that do not exist: "
        + "; ".join(stale)
        + " — remove or rename them"
    )


def test_the_table_reader_resolves_names_against_their_folder():
    listed, named = _row_paths("`msus/pacs/query.py`, `http.py`", "x")
    assert listed == ["msus/pacs/query.py", "msus/pacs/http.py"] and named == []
    listed, named = _row_paths("`app.py`, `msus/ui/`", "`player.py` (+ `pages/`), `msus.ui.text`, `x.toml`")
    assert listed == ["app.py", "msus/ui/"] and named == ["msus/ui/player.py", "msus/ui/pages/"]
    listed, named = _row_paths("`msus/io/tree.py`", "by `folder.py`'s rules")
    assert named == []  # a row without a folder names no modules of its own
    _, named = _row_paths("`msus/cli.py`, `msus/commands/`", "`cli.py` dispatches; `info.py`")
    assert named == ["msus/commands/info.py"]  # `cli.py` is the row's own msus/cli.py


# ---- environment variables ----------------------------------------------------------------------
def _read_in_msus() -> set[str]:
    """MSUS_* names msus reads: string constants naming one, and the settings built from field names."""
    names: set[str] = set()
    for path in PKG.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and ENV_NAME.fullmatch(node.value):
                names.add(node.value)
    from msus import limits
    from msus.config import Settings

    names.update(limits.SETTINGS.values())
    names.update("MSUS_" + f.upper() for f in Settings.__dataclass_fields__)
    return names - set(NOT_ENVIRONMENT)


def _documented() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for name in set(ENV_NAME.findall(doc.read_text(encoding="utf-8"))):
            out.setdefault(name, []).append(str(doc.relative_to(ROOT)))
    return out


def _read_elsewhere() -> set[str]:
    """MSUS_* names the app script, tests, benchmarks, scripts and the Makefile read."""
    files = [ROOT / "app.py", ROOT / "Makefile", *(ROOT / "tests").glob("*.py"), *(ROOT / "benchmarks").glob("*.py"),
             *(ROOT / "scripts").glob("*")]
    names: set[str] = set()
    for f in files:
        if f.is_file() and f.name != Path(__file__).name:
            names.update(ENV_NAME.findall(f.read_text(encoding="utf-8", errors="replace")))
    return names


def test_every_environment_variable_msus_reads_is_documented():
    undocumented = sorted(_read_in_msus() - set(_documented()))
    assert not undocumented, "read in msus/ but documented neither in README.md nor docs/: " + ", ".join(undocumented)


def test_every_documented_environment_variable_is_read():
    read = _read_in_msus() | _read_elsewhere()
    stale = sorted(f"{n} ({', '.join(sorted(docs))})" for n, docs in _documented().items() if n not in read)
    assert not stale, "documented but read nowhere in the project: " + "; ".join(stale)


def test_the_environment_reader_sees_settings_and_constants():
    read = _read_in_msus()
    assert {"MSUS_DATA_DIR", "MSUS_LOOPS_DIR", "MSUS_MAX_LOOP_MB", "MSUS_PACS_URL", "MSUS_DATABASE_URL"} <= read
    assert "MSUS_PHANTOM" not in read and not any(n.endswith("_") for n in read)


# ---- CLI verbs ------------------------------------------------------------------------------------
def _help_verbs(*verb: str) -> set[str]:
    """The sub-commands ``msus [verb] --help`` lists (empty when it has none)."""
    out = subprocess.run([sys.executable, "-m", "msus", *verb, "--help"], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    m = re.search(r"\{([\w,-]+)\}", out.stdout)
    if m:
        return set(m.group(1).split(","))
    section = re.search(r"positional arguments:\n(.*?)(\n\S|\Z)", out.stdout, re.S)
    return set(re.findall(r"^    (\w[\w-]*)\s", section.group(1), re.M)) if section else set()


def _readme_commands() -> set[tuple[str, ...]]:
    """``msus VERB [SUBVERB]`` as the README shows it in code (inline or fenced), never in prose."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    code = re.findall(r"```[^\n]*\n(.*?)```", text, re.S)
    spans = TICKED.findall(FENCED.sub("", text))
    lines = [ln for block in code for ln in block.splitlines()] + spans
    found = set()
    for ln in lines:
        m = re.match(r"^\s*(?:\$ )?(?:python -m )?msus ((?:[a-z][a-z-]*)(?: [a-z][a-z-]*)?)", ln)
        if m:
            found.add(tuple(m.group(1).split()))
    return found


def test_every_cli_verb_in_the_readme_exists():
    commands = _readme_commands()
    verbs = _help_verbs()
    assert {"info", "analyze", "export"} <= verbs and commands
    wrong = sorted(" ".join(c) for c in commands if c[0] not in verbs)
    for c in sorted({c for c in commands if len(c) == 2 and c[0] in verbs}):
        subs = _help_verbs(c[0])
        if subs and c[1] not in subs:
            wrong.append(" ".join(c))
    assert not wrong, "README.md shows msus commands that `msus --help` does not list: " + ", ".join(wrong)


# ---- names, paths and links the docs cite -----------------------------------------------------------
#: Modules the docs mention as removed: they must really be gone.
REMOVED = {"msus.findings", "msus.detect", "msus.motion", "msus.track"}
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _resolves(name: str) -> bool:
    import importlib

    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


def test_every_msus_name_and_path_the_docs_cite_exists():
    wrong = []
    for doc in DOCS:
        for tok in set(TICKED.findall(FENCED.sub("", doc.read_text(encoding="utf-8")))):
            for p in re.findall(r"(?<![\w./])(msus/[\w./-]*[\w/])", tok):
                if not (ROOT / p).exists():
                    wrong.append(f"{doc.name}: path {p}")
            for name in re.findall(r"(?<![\w./])(msus(?:\.[A-Za-z_]\w*)+)", tok):
                if name.endswith(".sqlite3"):  # a file name
                    continue
                if name in REMOVED:
                    if _resolves(name):
                        wrong.append(f"{doc.name}: {name} is said to be gone but imports")
                elif not _resolves(name):
                    wrong.append(f"{doc.name}: {name} does not import")
    assert not wrong, "the docs cite msus names or paths that do not exist: " + "; ".join(sorted(wrong))


def test_every_relative_link_in_the_docs_exists():
    wrong = []
    for doc in DOCS:
        for target in re.findall(r"\]\(([^)\s]+)\)", doc.read_text(encoding="utf-8")):
            if re.match(r"^[a-z]+:", target) or target.startswith("#"):
                continue
            path = target.split("#")[0]
            if path and not (doc.parent / path).exists():
                wrong.append(f"{doc.relative_to(ROOT)} → {target}")
    assert not wrong, "links to files that are not in the repository: " + "; ".join(wrong)
