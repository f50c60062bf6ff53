"""The shape of the house: which room may import which, and rooms that stay small.

DESIGN.md fixes the direction of dependencies: ``agent`` uses
``connectors``, ``storage`` and ``config``; those never import ``agent``,
and ``connectors`` and ``storage`` never import each other. Inside
``agent``, ``mail`` is pure parsing and imports nothing else of ``agent``,
``pipeline`` builds only on ``mail``, ``runtime`` never reaches up into
``cli`` or ``web``, and ``web`` never into ``cli``: what both faces need lives
below them. Every import counts, also one made inside a function to load late.
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

import pytest

from tests.support.paths import REPO

PACKAGES = ("agent", "connectors", "storage", "config")
MAX_AGENT_MODULE_LINES = 700


def _module(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """Module -> every module it imports, at any depth of its code."""
    found: dict[str, set[str]] = {}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            names = found.setdefault(_module(path), set())
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names.update(alias.name for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names.add(node.module)
    return found


IMPORTS = _imports()


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


RULES = [
    ("connectors", ("agent", "storage")),
    ("storage", ("agent", "connectors")),
    ("config", ("agent", "connectors", "storage")),
    ("agent.mail", ("agent.pipeline", "agent.runtime", "agent.cli", "agent.web")),
    ("agent.pipeline", ("agent.runtime", "agent.cli", "agent.web")),
    ("agent.runtime", ("agent.cli", "agent.web")),
    ("agent.web", ("agent.cli",)),
]
"""(room, what it must never import)."""


@pytest.mark.parametrize(("room", "forbidden"), RULES, ids=[room for room, _ in RULES])
def test_a_room_imports_only_what_lies_below_it(room: str, forbidden: tuple[str, ...]) -> None:
    broken = sorted(
        f"{module} imports {name}"
        for module, names in IMPORTS.items()
        if _within(module, room)
        for name in names
        if any(_within(name, below) for below in forbidden)
    )
    assert broken == []


def test_the_rule_sees_a_late_import() -> None:
    """An import inside a function is an import: the registry loads each connector late."""
    assert "connectors.imap.connector" in IMPORTS["agent.runtime.registry"]


def test_no_module_name_is_used_twice_in_agent() -> None:
    names = Counter(path.stem for path in (REPO / "agent").rglob("*.py") if path.stem != "__init__")
    assert [name for name, count in names.items() if count > 1] == []


def test_no_agent_module_grows_past_its_room() -> None:
    sizes = {
        str(path.relative_to(REPO)): len(path.read_text(encoding="utf-8").splitlines())
        for path in (REPO / "agent").rglob("*.py")
    }
    assert {path: n for path, n in sizes.items() if n > MAX_AGENT_MODULE_LINES} == {}
