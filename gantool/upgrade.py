"""``python -m gantool.upgrade PATH...``: rewrite a plugin's imports of moved gantool modules to their new homes.

gantool 0.2 moved its flat modules into layers; the old paths still import, with a ``DeprecationWarning``,
until 0.3 (:mod:`gantool._compat`). This rewrites ``from gantool.settings import flag`` into
``from gantool import flag``, ``from gantool.nets.unet import UNet`` into
``from gantool.lib.nets.unet import UNet`` and so on, name by name, in place (``--check`` only lists what it
would change). Each name goes to the public ``gantool`` package when it is exported there, else to the
first new module that defines it.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import gantool
from gantool._compat import MOVED


def new_home(old_module: str, name: str) -> str:
    """The module a name of ``old_module`` should be imported from now."""
    if name in gantool.__all__:
        return "gantool"
    for target in MOVED[old_module]:
        if hasattr(importlib.import_module(target), name):
            return target
    raise LookupError(f"{old_module}.{name} has no new home; import it from one of {', '.join(MOVED[old_module])}")


def rewrite_imports(source: str) -> str:
    """``source`` with every import of a moved module rewritten (other lines untouched)."""
    lines = source.splitlines(keepends=True)
    for node in sorted(_moved_imports(ast.parse(source)), key=lambda n: n.lineno, reverse=True):
        indent = lines[node.lineno - 1][: node.col_offset]
        end = node.end_lineno or node.lineno
        newline = "\n" if lines[end - 1].endswith("\n") else ""
        lines[node.lineno - 1 : end] = [line + newline for line in _replacement(node, indent)]
    return "".join(lines)


def _moved_imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in ast.walk(tree):
        moved_from = isinstance(node, ast.ImportFrom) and node.level == 0 and node.module in MOVED
        moved_import = isinstance(node, ast.Import) and any(alias.name in MOVED for alias in node.names)
        if moved_from or moved_import:
            yield node  # type: ignore[misc]


def _replacement(node: ast.Import | ast.ImportFrom, indent: str) -> list[str]:
    if isinstance(node, ast.Import):
        parts = []
        for alias in node.names:
            name = MOVED[alias.name][0] if alias.name in MOVED else alias.name
            parts.append(f"{name} as {alias.asname}" if alias.asname else name)
        return [f"{indent}import {', '.join(parts)}"]
    assert node.module is not None
    by_module: dict[str, list[str]] = {}
    for alias in node.names:
        home = new_home(node.module, alias.name)
        by_module.setdefault(home, []).append(f"{alias.name} as {alias.asname}" if alias.asname else alias.name)
    return [f"{indent}from {module} import {', '.join(names)}" for module, names in by_module.items()]


def _python_files(paths: Sequence[str]) -> Iterator[Path]:
    for raw in paths:
        path = Path(raw)
        yield from sorted(path.rglob("*.py")) if path.is_dir() else [path]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gantool.upgrade", description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="+", help="Python files or folders (searched recursively).")
    parser.add_argument("--check", action="store_true", help="Only list the files that would change.")
    args = parser.parse_args(argv)
    changed = 0
    for path in _python_files(args.paths):
        try:
            source = path.read_text(encoding="utf-8")
            rewritten = rewrite_imports(source)
        except (OSError, SyntaxError, UnicodeDecodeError, LookupError) as error:
            print(f"error: {path}: {error}", file=sys.stderr)
            return 2
        if rewritten != source:
            changed += 1
            print(f"{'would rewrite' if args.check else 'rewrote'} {path}")
            if not args.check:
                path.write_text(rewritten, encoding="utf-8")
    print(f"{changed} file(s) {'to rewrite' if args.check else 'rewritten'}", file=sys.stderr)
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    sys.exit(main())
