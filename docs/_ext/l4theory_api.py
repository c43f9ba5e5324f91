"""Generate the API reference of every public name of :mod:`l4theory`, and check it.

"Public" is decided in one place, :func:`public_names`: every module of the package
whose dotted path has no part starting with ``_``; in each, the names in ``__all__`` or,
where a module has no ``__all__``, the functions and classes defined in it whose names do
not start with ``_``.

At ``config-inited`` the extension writes ``api/modules/<module>.rst`` for each public
module (the module's docstring, a table of the functions and classes defined there with
one page each under ``api/generated``, its constants, and a table of the names a package
re-exports, linked to the module that defines them).
At ``env-check-consistency`` it checks that every public name resolves to a documented
Python object: its own dotted name, or any documented name bound to the same object.
A missing name is a warning, which ``sphinx-build -W`` turns into a failed build.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Sphinx is imported only by the hooks, so the tests can use the rest
    from sphinx.application import Sphinx
    from sphinx.environment import BuildEnvironment

PACKAGE = "l4theory"
#: Deprecated aliases of moved modules (kept for one release): importing them warns, and
#: their names are documented where they live now (l4theory.experiment).
ALIASES = frozenset({"l4theory.convert.sweep", "l4theory.convert.tasks"})


def public_modules(package: str = PACKAGE) -> list[str]:
    """Dotted names of the package's public modules, the package itself first.

    Parameters
    ----------
    package : str
        Name of an importable package.

    Returns
    -------
    list of str
        Module names with no part starting with ``_``, sorted.
    """
    root = importlib.import_module(package)
    names = [package]
    for info in pkgutil.walk_packages(root.__path__, package + "."):
        if info.name in ALIASES:
            continue
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return sorted(names)


def public_names(module: ModuleType) -> list[str]:
    """The public names of one module: ``__all__``, else what it defines without ``_``.

    Parameters
    ----------
    module : module
        An imported module.

    Returns
    -------
    list of str
        Attribute names of ``module``, in ``__all__`` order or sorted.
    """
    names = getattr(module, "__all__", None)
    if names is not None:
        return list(names)
    return sorted(
        name for name, obj in vars(module).items()
        if not name.startswith("_")
        and (inspect.isfunction(obj) or inspect.isclass(obj))
        and obj.__module__ == module.__name__
    )


def _is_code(obj: object) -> bool:
    obj = inspect.unwrap(obj)
    return inspect.isfunction(obj) or inspect.isclass(obj)


def _owner(modname: str, name: str, table: dict[str, list[str]]) -> str:
    """The public module whose page documents ``modname.name``."""
    obj = getattr(importlib.import_module(modname), name)
    if inspect.isfunction(obj) or inspect.isclass(obj):
        defining = obj.__module__
        if defining in table and name in table[defining]:
            return defining
        return modname
    # data: the deepest public module that lists the same object under the same name
    holders = [m for m, names in table.items()
               if name in names and getattr(importlib.import_module(m), name) is obj]
    return max(holders, key=lambda m: (m.count("."), m)) if holders else modname


def _summary(full: str) -> str:
    """First paragraph of the docstring of a function or class; the value of a constant."""
    modname, _, name = full.rpartition(".")
    obj = inspect.unwrap(getattr(importlib.import_module(modname), name))  # lru_cache etc.
    if not (inspect.isfunction(obj) or inspect.isclass(obj)):
        text = repr(obj).replace("\n", " ")
        text = text if len(text) <= 60 else text[:57] + "..."
        return "" if "`" in text else f"``{text}``"
    doc = inspect.getdoc(obj) or ""
    return doc.strip().split("\n\n")[0].replace("\n", " ")


def _module_page(modname: str, table: dict[str, list[str]]) -> str:
    title = modname
    own, elsewhere = [], []
    for name in table[modname]:
        owner = _owner(modname, name, table)
        (own if owner == modname else elsewhere).append(f"{owner}.{name}")
    sub = [m for m in table if m.rpartition(".")[0] == modname]
    lines = [title, "=" * len(title), "", f".. automodule:: {modname}", "   :no-members:", "",
             f".. currentmodule:: {modname}", ""]
    module = importlib.import_module(modname)
    code = [f for f in own if _is_code(getattr(module, f.rpartition(".")[2]))]
    data = [f for f in own if f not in code]
    if code:
        lines += ["Functions and classes", "---------------------", "", ".. list-table::",
                  "   :widths: 35 65", ""]
        for full in code:
            lines += [f"   * - :py:obj:`~{full}`", f"     - {_summary(full)}"]
        lines += ["", ".. toctree::", "   :hidden:", ""] + [f"   ../generated/{full}" for full in code] + [""]
    if data:
        lines += ["Constants", "---------", ""]
        for full in data:
            lines += [f".. autodata:: {full.rpartition('.')[2]}", ""]
    if elsewhere:
        lines += ["Re-exported here", "----------------", "",
                  f"Also importable as ``{modname}.<name>``; documented where they are defined.", "",
                  ".. list-table::", "   :widths: 35 65", ""]
        for full in elsewhere:
            lines += [f"   * - :py:obj:`~{full}`", f"     - {_summary(full)}"]
        lines.append("")
    if sub:
        lines += ["Submodules", "----------", ""]
        lines += [f"* :py:mod:`{m}`" for m in sub] + [""]
    return "\n".join(lines)


def write_pages(app: Sphinx, config: object) -> None:
    """Write one page per public module under ``api/modules`` (only files that change).

    Runs at ``config-inited``, before Sphinx looks for source files and before autosummary
    writes the stub pages these pages ask for.
    """
    table = {m: public_names(importlib.import_module(m)) for m in public_modules()}
    out = Path(app.srcdir) / "api" / "modules"
    out.mkdir(parents=True, exist_ok=True)
    _write_tree(out, {f"{m}.rst": _module_page(m, table) for m in table})
    objects = {}
    for modname, names in table.items():
        module = importlib.import_module(modname)
        for name in names:
            if _is_code(getattr(module, name)) and _owner(modname, name, table) == modname:
                objects[f"{modname}.{name}.rst"] = _object_page(modname, name, getattr(module, name))
    _write_tree(Path(app.srcdir) / "api" / "generated", objects)


def _object_page(modname: str, name: str, obj: object) -> str:
    title = name
    lines = [title, "=" * len(title), "", f"*in* :py:mod:`{modname}`", "", f".. currentmodule:: {modname}", ""]
    if inspect.isclass(obj):
        lines += [f".. autoclass:: {name}", "   :members:"]
        lines += ["   :show-inheritance:", ""] if obj.__bases__ != (object,) else [""]
    else:
        lines += [f".. autofunction:: {name}", ""]
    return "\n".join(lines)


def _write_tree(out: Path, wanted: dict[str, str]) -> None:
    """Make ``out`` hold exactly ``wanted`` (file name -> text), rewriting only changed files."""
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("*.rst"):
        if stale.name not in wanted:
            stale.unlink()
    for fname, text in wanted.items():
        path = out / fname
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")


def _resolve(fullname: str) -> object | None:
    """Import a dotted name (module, or attribute path inside a module); None if it fails."""
    parts = fullname.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


def missing_names(documented: set[str]) -> list[str]:
    """Public names of the package that no documented Python object covers.

    Parameters
    ----------
    documented : set of str
        Dotted names of the documented Python objects (the ``py`` domain's objects).

    Returns
    -------
    list of str
        ``module.name`` for every public name that is neither documented under its own
        dotted name nor bound to the same object as a documented name; public modules
        without a ``py:module`` entry are listed by their name.
    """
    ids = {id(obj) for obj in map(_resolve, documented) if obj is not None}
    missing = []
    for modname in public_modules():
        if modname not in documented:
            missing.append(modname)
        module = importlib.import_module(modname)
        for name in public_names(module):
            full = f"{modname}.{name}"
            if full not in documented and id(getattr(module, name)) not in ids:
                missing.append(full)
    return missing


def check_coverage(app: Sphinx, env: BuildEnvironment) -> None:
    """Warn (an error under ``-W``) for each public name missing from the reference."""
    from sphinx.util import logging

    logger = logging.getLogger(__name__)
    documented = set(env.get_domain("py").objects) | set(env.get_domain("py").modules)
    missing = missing_names(documented)
    for full in missing:
        logger.warning("public name missing from the API reference: %s", full, type="l4theory", subtype="api")
    if not missing:
        logger.info("API reference: every public name of %s is documented", PACKAGE)


def _documented_index(env: BuildEnvironment) -> dict[str, object]:
    """Map ``id(object)`` of every documented Python object to its documented name (cached)."""
    cache = getattr(env, "_l4theory_index", None)
    if cache is None:
        cache = {"ids": {}, "tails": {}}
        for name, entry in env.get_domain("py").objects.items():
            if entry.aliased:
                continue
            obj = _resolve(name)
            # code, and containers (not ints or strings, which the interpreter may share)
            if obj is not None and (_is_code(obj) or isinstance(obj, tuple | list | dict | frozenset)):
                cache["ids"].setdefault(id(obj), name)
            cache["tails"].setdefault(name.rpartition(".")[2], []).append(name)
        env._l4theory_index = cache
    return cache


def resolve_alias(app: Sphinx, env: BuildEnvironment, node, contnode):
    """Resolve a Python cross-reference to a re-exported name or a unique bare class name.

    ``l4theory.theory.spike_cumulant`` (a package's re-export) resolves to the page of
    ``l4theory.theory.discrete.spike_cumulant``; inside a package's docstring a bare
    ``poisson_mean`` resolves the same way; a bare name that exactly one documented
    object of the package ends with (``Network``) resolves to that object.
    """
    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"].lstrip("~.")
    index = _documented_index(env)
    candidates = [target]
    modname = node.get("py:module")
    if modname:
        parts = modname.split(".")
        candidates = [".".join(parts[:cut] + [target]) for cut in range(len(parts), 0, -1)] + candidates
    canonical = None
    for candidate in candidates:
        if not candidate.startswith(PACKAGE):
            continue
        obj = _resolve(candidate)
        if obj is not None and id(obj) in index["ids"]:
            canonical = index["ids"][id(obj)]
            break
    if canonical is None and "." not in target and len(index["tails"].get(target, [])) == 1:
        canonical = index["tails"][target][0]
    if canonical is None:
        return None
    return env.get_domain("py").resolve_xref(env, node["refdoc"], app.builder, "obj", canonical, node, contnode)


def setup(app: Sphinx) -> dict[str, object]:
    """Register the page generator and the coverage check."""
    app.connect("config-inited", write_pages)
    app.connect("env-check-consistency", check_coverage)
    app.connect("missing-reference", resolve_alias)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
