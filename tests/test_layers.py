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
