"""The domain stays pure: of the outside world it imports the standard library's pure parts and the
domain part of `eventsourcing`, nothing else (the import-linter contract in `pyproject.toml` checks
the layers above it; this checks what a contract on packages cannot: the standard library)."""

from __future__ import annotations

import ast
from pathlib import Path

DOMAIN = Path(__file__).resolve().parents[2] / "domain"
PURE = {"__future__", "dataclasses", "datetime", "decimal", "functools", "math", "re", "types", "typing", "uuid",
        "collections", "enum", "itertools", "eventsourcing.domain"}
#: Modules of which the domain may import only the names given: the topic of an event class is a name, no I/O
#: (`eventsourcing.domain` itself names its aggregates with it), and it belongs beside the class it names.
PURE_NAMES = {"eventsourcing.utils": {"get_topic"}}


def imported(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = {alias.name for alias in node.names}
            found |= {node.module} if not names <= PURE_NAMES.get(node.module, set()) else set()
    return found


def test_the_domain_imports_nothing_impure() -> None:
    outside = {f"{path.name}: {name}" for path in DOMAIN.glob("*.py") for name in imported(path)
               if name.split(".")[0] != "domain" and name not in PURE}
    assert not outside, sorted(outside)
