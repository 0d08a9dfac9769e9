"""Public functions carry numpydoc docstrings (issue 23, item 6).

The rule, checked on the source (``ast``, nothing is imported) of the subpackages and modules
listed in :data:`CHECKED`:

* every public function — its name does not start with ``_``; module functions, methods
  (also of private classes) and nested functions alike — has a docstring;
* a function that takes parameters besides ``self``/``cls`` has a numpydoc ``Parameters``
  section (underlined with dashes) that names exactly those parameters (``*args`` and
  ``**kwargs`` by their names, the stars optional; several may share an entry,
  ``fov_x_m, fov_y_m : float``): a renamed, added or removed parameter cannot leave the
  section behind. ``Returns``/``Yields``/``Raises`` are written where they say something,
  which no parser can judge;
* one without parameters (``def armed(self) -> bool``) may keep a one-line docstring: what it
  returns is what that line says;
* properties (``@property``, ``@x.setter``, ``@cached_property``) and dunder methods are
  skipped: they are documented by their class.
"""

import ast
import re
from pathlib import Path

import pytest

import twin

PKG = Path(twin.__file__).parent
#: Subpackages (a folder, every module in it) and modules (``geometry.py``) held to the rule.
#: twin/cli is not: its command functions' docstrings are the ``--help`` text (CONTRACTS §1).
CHECKED = ["acquisition", "analysis", "beam", "core", "geometry.py", "io", "operators", "recon",
           "report", "sample", "scenario", "services", "tomo", "workflows"]
PROPERTY_DECORATORS = {"property", "cached_property", "setter", "getter", "deleter"}
PARAMETERS = re.compile(r"^Parameters\s*\n-{3,}\s*\n(.*?)(?=^\w[\w ]*\n-{3,}|\Z)", re.M | re.S)
ENTRY = re.compile(r"^(\*{0,2}\w+(?:\s*,\s*\*{0,2}\w+)*)\s*(?::|$)")


def _is_property(fn: ast.FunctionDef) -> bool:
    for d in fn.decorator_list:
        name = d.attr if isinstance(d, ast.Attribute) else getattr(d, "id", None)
        if name in PROPERTY_DECORATORS:
            return True
    return False


def _parameters(fn: ast.FunctionDef) -> list[str]:
    a = fn.args
    names = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs]
    if names and names[0] in ("self", "cls"):
        names = names[1:]
    return names + ([a.vararg.arg] if a.vararg else []) + ([a.kwarg.arg] if a.kwarg else [])


def _documented(doc: str) -> set[str] | None:
    """Names of the ``Parameters`` section's entries (unindented lines), None without one."""
    m = PARAMETERS.search(doc)
    if m is None:
        return None
    names = set()
    for line in m.group(1).splitlines():
        e = ENTRY.match(line)
        if e:
            names |= {n.strip().lstrip("*") for n in e.group(1).split(",")}
    return names


def undocumented(source: str, filename: str = "<source>") -> list[str]:
    """``file:line name (why)`` for each public function that breaks the rule above.

    Parameters
    ----------
    source : str
        Python source of one module.
    filename : str
        Name used in the messages.

    Returns
    -------
    list of str
        One entry per offending function, in the order of ``ast.walk``.
    """
    out = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if node.name.startswith("_") or _is_property(node):
            continue
        doc = ast.get_docstring(node)
        params = _parameters(node)
        if not doc:
            out.append(f"{filename}:{node.lineno} {node.name} (no docstring)")
        elif (listed := _documented(doc)) is None:
            if params:
                out.append(f"{filename}:{node.lineno} {node.name} (no Parameters section)")
        elif listed != set(params):
            out.append(f"{filename}:{node.lineno} {node.name} (Parameters lists "
                       f"{sorted(listed)}, the signature {sorted(params)})")
    return out


def test_rule_flags_what_it_should():
    src = '''
def bare(x):
    return x

def prose(x):
    """Only prose, no section."""

def good(x):
    """Doubles.

    Parameters
    ----------
    x : float
        A number.
    """

def returns_only(x):
    """A section, but not the one that says what ``x`` is.

    Returns
    -------
    float
    """

def no_args():
    """One line is enough without parameters."""

def no_args_no_doc():
    pass

def stale(x, y, *rest, **kw):
    """Parameters drifted from the signature.

    Parameters
    ----------
    x, z : float
        Numbers.
    *rest
        More.
    **kw
        Options.
    """

def shared(a, b, *rest, **kw):
    """Entries may share a line; the stars are optional.

    Parameters
    ----------
    a, b : float
        Numbers.
    rest
        More.
    **kw
        Options.

    Returns
    -------
    x : float
        A named return is not a parameter.
    """

def _private(x):
    pass

class C:
    @property
    def value(self):
        return 1

    def method(self, y):
        """Prose only."""

    def __repr__(self):
        return "C"
'''
    flagged = [m.split()[1] for m in undocumented(src)]
    assert flagged == ["bare", "prose", "returns_only", "no_args_no_doc", "stale", "method"]


@pytest.mark.parametrize("sub", CHECKED)
def test_public_functions_have_numpydoc_sections(sub):
    path = PKG / sub
    files = [path] if path.is_file() else sorted(path.rglob("*.py"))
    assert files, sub
    missing = [m for f in files
               for m in undocumented(f.read_text(encoding="utf-8"), str(f.relative_to(PKG)))]
    assert not missing, "public functions whose docstring breaks the rule:\n" + "\n".join(missing)
