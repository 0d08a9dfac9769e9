"""The package's layers (issue 13): nothing imports a layer above its own.

Lowest first: core < operators < io < analysis < sample < beam < acquisition < recon < tomo <
scenario < geometry < workflows < services < report < cli.
"""

import ast
from pathlib import Path

ORDER = ["core", "operators", "io", "analysis", "sample", "beam", "acquisition", "recon", "tomo",
         "scenario", "geometry", "workflows", "services", "report", "cli", "__main__", "__init__"]
PKG = Path(__file__).resolve().parents[1] / "twin"


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_no_module_imports_a_higher_layer():
    upward = []
    for f in sorted(PKG.rglob("*.py")):
        me = ".".join(f.relative_to(PKG.parent).with_suffix("").parts).removesuffix(".__init__")
        lm = _layer(me)
        assert lm in ORDER or lm == "data", f"{f}: layer {lm} is not in the order"
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("twin"):
                targets = ([node.module] if node.module != "twin"
                           else [f"twin.{a.name}" for a in node.names])
                for t in targets:
                    lt = _layer(t)
                    if lt in ORDER and lm in ORDER and ORDER.index(lt) > ORDER.index(lm):
                        upward.append(f"{f.relative_to(PKG.parent)}:{node.lineno} {me} → {t}")
    assert not upward, "imports pointing up the layers:\n" + "\n".join(upward)


def _imports(module: str, tree: ast.Module, modules: set[str], top_only: bool) -> set[str]:
    """The twin modules that ``module`` imports: at module level only (``top_only``: its body,
    ``if`` and ``try`` blocks included), or anywhere, imports inside functions included."""
    defs = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    nodes = []
    for node in tree.body if top_only else [tree]:
        if not (top_only and isinstance(node, defs)):
            nodes.extend(ast.walk(node))
    out = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("twin"):
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                out.add(sub if sub in modules else node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("twin."))
    return {m for m in out if m in modules and m != module}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles of ``graph``: its strongly connected parts of two or more modules."""
    index, low, stack, on, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while not part or part[-1] != v:
                part.append(stack.pop())
                on.discard(part[-1])
            if len(part) > 1:
                found.append(sorted(part))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _graph(top_only: bool, prefix: str = "twin") -> dict[str, set[str]]:
    files = {".".join(f.relative_to(PKG.parent).with_suffix("").parts).removesuffix(".__init__"): f
             for f in sorted(PKG.rglob("*.py"))}
    return {m: {t for t in _imports(m, ast.parse(f.read_text()), set(files), top_only)
                if t.startswith(prefix)}
            for m, f in files.items() if m.startswith(prefix)}


def test_the_cycle_finder_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_level_import_circle_between_workflows():
    assert _cycles(_graph(top_only=True, prefix="twin.workflows.")) == []


def test_no_import_circle_between_workflows_even_inside_functions():
    # issue 23: forecast ↔ simres (fluence in the forecast, the laws in the measurement) made
    # each import the other; a lazy import hides such a circle from Python, not from a reader
    assert _cycles(_graph(top_only=False, prefix="twin.workflows.")) == []
