"""House rules of the code base, read from the source with ``ast`` (nothing is imported).

* No import cycle between the modules of ``msus/`` — imports inside functions count too (only
  ``if TYPE_CHECKING:`` blocks are left out): a cycle hidden in a function is still a cycle.
* The app (``msus/ui/``, ``app.py``) calls the library, never the CLI (``msus.commands``).
* Every ``except Exception`` in ``msus/`` logs what it caught (``logger.<level>(...)``, the
  module's ``logger = logging.getLogger(__name__)``) or re-raises it; no bare ``except:``.
* Logging is configured only at the edges (:mod:`msus.logs`), one ``logger`` per module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "msus"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> dict[str, tuple[Path, ast.Module]]:
    out = {}
    for path in sorted(PKG.rglob("*.py")):
        if "migrations" in path.parts and "versions" in path.parts:
            continue
        out[_module_name(path)] = (path, ast.parse(path.read_text(encoding="utf-8"), str(path)))
    return out


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            t = node.test
            name = t.id if isinstance(t, ast.Name) else t.attr if isinstance(t, ast.Attribute) else None
            if name == "TYPE_CHECKING":
                for sub in node.body:
                    skip.update(id(n) for n in ast.walk(sub))
    return skip


def _imports(name: str, path: Path, tree: ast.Module, modules: set[str]) -> set[str]:
    """Modules of ``msus`` that ``name`` imports anywhere in its source."""
    skip = _type_checking_nodes(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "msus":
                    found.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.split(".")[0] != "msus":
                continue
            subs = [f"{mod}.{a.name}" for a in node.names if f"{mod}.{a.name}" in modules]
            found.update(subs)
            if len(subs) < len(node.names):  # names defined in the module itself
                found.add(mod)
    return {m for m in found if m in modules and m != name}


def _graph() -> dict[str, set[str]]:
    src = _sources()
    modules = set(src)
    return {name: _imports(name, path, tree, modules) for name, (path, tree) in src.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_graph_sees_imports_inside_functions():
    g = _graph()
    # review_page imports its panels inside render(): they must be edges of the graph
    assert "msus.ui.guard" in g["msus.ui.review_page"]
    assert "msus.ui.store_panels" in g["msus.ui.review_page"]


def test_no_import_cycle_in_msus():
    cycles = _cycles(_graph())
    assert not cycles, "import cycles (each line one strongly connected group):\n" + "\n".join(
        " ⇄ ".join(c) for c in cycles)


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_app_imports_no_cli_command():
    g = _graph()
    offenders = sorted(m for m, deps in g.items()
                       if m.startswith("msus.ui") and any(d.startswith("msus.commands") for d in deps))
    app = ast.parse((ROOT / "app.py").read_text(encoding="utf-8"))
    modules = set(g)
    if any(d.startswith("msus.commands") for d in _imports("app", ROOT / "app.py", app, modules)):
        offenders.append("app.py")
    assert not offenders


def _logs(handler: ast.ExceptHandler) -> bool:
    for node in ast.walk(handler):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "logger"):
            return True
    return any(isinstance(n, ast.Raise) and n.exc is None for n in handler.body)


def _broad_handlers():
    for name, (path, tree) in _sources().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ExceptHandler):
                t = node.type
                names = [t] if not isinstance(t, ast.Tuple) else list(t.elts)
                if t is None or any(isinstance(n, ast.Name) and n.id in ("Exception", "BaseException") for n in names):
                    yield f"{path.relative_to(ROOT)}:{node.lineno}", node


def test_every_broad_except_logs_or_reraises():
    silent = [where for where, h in _broad_handlers() if h.type is None or not _logs(h)]
    assert not silent, "broad except without a logger call or a bare raise: " + ", ".join(silent)


@pytest.mark.parametrize("where", ["msus/cli.py", "msus/ui/guard.py", "msus/ui/review_page.py"])
def test_the_edges_log_the_traceback(where):
    tree = ast.parse((ROOT / where).read_text(encoding="utf-8"))
    handlers = [h for h in ast.walk(tree) if isinstance(h, ast.ExceptHandler)
                and isinstance(h.type, ast.Name) and h.type.id == "Exception"]
    assert handlers
    for h in handlers:
        assert any(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "exception"
                   for n in ast.walk(h)), f"{where}:{h.lineno} must use logger.exception"


def test_one_logger_per_module_configured_only_at_the_edges():
    bad = []
    for name, (path, tree) in _sources().items():
        if name == "msus.logs":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                f, v = node.func.attr, node.func.value
                if isinstance(v, ast.Name) and v.id == "logging" and f in ("basicConfig", "captureWarnings"):
                    bad.append(f"{path.relative_to(ROOT)}:{node.lineno} configures logging")
                if isinstance(v, ast.Name) and v.id == "logging" and f == "getLogger":
                    arg = node.args[0] if node.args else None
                    if not (isinstance(arg, ast.Name) and arg.id == "__name__"):
                        bad.append(f"{path.relative_to(ROOT)}:{node.lineno} logger not named __name__")
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "log" for t in node.targets):
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno} logger is called `logger`")
    assert not bad


def test_the_except_rule_tells_silent_from_logged():
    silent, logged, reraised = (ast.parse(src).body[0].handlers[0] for src in (
        "try:\n    f()\nexcept Exception:\n    pass\n",
        "try:\n    f()\nexcept Exception:\n    logger.debug('x', exc_info=True)\n",
        "try:\n    f()\nexcept Exception:\n    cleanup()\n    raise\n",
    ))
    assert (_logs(silent), _logs(logged), _logs(reraised)) == (False, True, True)
