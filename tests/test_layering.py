"""The import direction of DESIGN.md: sources → memory → crew → publish; only tapewatch/ imports them all."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
ORDER = ["sources", "memory", "crew", "publish"]


def imports_of(path: Path) -> list[str]:
    """Absolute module names imported anywhere in ``path`` (lazy imports inside functions included)."""
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


@pytest.mark.parametrize("package", ORDER)
def test_each_stage_imports_only_itself_and_earlier_stages(package: str) -> None:
    allowed = set(ORDER[: ORDER.index(package) + 1])
    files = sorted((ROOT / package).rglob("*.py"))
    assert files
    wrong = [f"{f.relative_to(ROOT)} imports {name}" for f in files for name in imports_of(f)
             if name.split(".")[0] in {"tapewatch", *ORDER} - allowed]
    assert wrong == []


def test_the_checker_sees_a_wrong_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from publish.review import ReviewQueue\n", encoding="utf-8")
    assert imports_of(module) == ["publish.review"]


ROOMS = {"web": ROOT / "tapewatch" / "web", "bot": ROOT / "tapewatch" / "bot"}


def _room_imports(room: str) -> dict[str, list[str]]:
    return {str(f.relative_to(ROOT)): imports_of(f) for f in sorted(ROOMS[room].rglob("*.py"))}


@pytest.mark.parametrize(("room", "other"), [("web", "bot"), ("bot", "web")])
def test_the_web_and_bot_rooms_never_import_each_other(room: str, other: str) -> None:
    found = _room_imports(room)
    assert found
    wrong = [f"{path} imports {name}" for path, names in found.items() for name in names
             if name == f"tapewatch.{other}" or name.startswith(f"tapewatch.{other}.")]
    assert wrong == []


@pytest.mark.parametrize("room", ["web", "bot"])
def test_both_rooms_act_on_drafts_through_the_review_queue_and_the_audit_log(room: str) -> None:
    names = {name for names in _room_imports(room).values() for name in names}
    assert {"publish.review", "publish.audit"} <= names
    # Neither room moves a draft's status by itself: no UPDATE of the drafts table outside publish/.
    for path in ROOMS[room].rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "update(schema.drafts" not in text and "update(d)" not in text, path
