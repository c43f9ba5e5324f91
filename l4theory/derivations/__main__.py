"""``python -m l4theory.derivations``: print every derivation and its checks."""

from __future__ import annotations

import sys

import sympy as sp

from . import checks, derived_expressions


def main() -> int:
    """Print the derived expressions (pretty and LaTeX) and the check table."""
    for name, expr in derived_expressions().items():
        print(f"== {name}")
        print(sp.pretty(expr, use_unicode=False))
        print(f"   LaTeX: {sp.latex(expr)}\n")
    results = checks()
    width = max(len(c.name) for c in results)
    print(f"{'check'.ljust(width)}  result  detail")
    for c in results:
        print(f"{c.name.ljust(width)}  {'ok  ' if c.ok else 'FAIL'}    {c.detail}")
    failed = [c for c in results if not c.ok]
    print(f"\n{len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
