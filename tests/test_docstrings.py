"""Every public function, class and method of mailflow/ says what it takes and returns (issue 19):
a new one without a docstring fails here, named by file and line."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "mailflow"


def _public_definitions(tree: ast.Module) -> list[tuple[int, str, bool]]:
    """(line, dotted name, has a docstring) of each module-level public function and class and
    each public method of those classes (public: no leading underscore)."""
    found: list[tuple[int, str, bool]] = []
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        if node.name.startswith("_"):
            continue
        found.append((node.lineno, node.name, ast.get_docstring(node) is not None))
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                method = isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
                if method and not item.name.startswith("_"):
                    has = ast.get_docstring(item) is not None
                    found.append((item.lineno, f"{node.name}.{item.name}", has))
    return found


def test_every_public_definition_has_a_docstring() -> None:
    missing: list[str] = []
    total = 0
    for path in sorted(PACKAGE.rglob("*.py")):
        if "migrations" in path.parts:
            continue  # Alembic revisions: upgrade()/downgrade() by convention
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for line, name, has in _public_definitions(tree):
            total += 1
            if not has:
                missing.append(f"{path.relative_to(PACKAGE.parent)}:{line} {name}")
    assert total > 900  # the walk found the package
    assert missing == [], "\n".join(missing)
