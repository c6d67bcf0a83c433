"""The demo data sits above the product: no product module imports it."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCT_APPS = ("leadrecord", "contacts", "handoff", "reports")


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_no_product_module_imports_the_demo_data():
    offenders = [
        f"{path.relative_to(ROOT)}: {name}"
        for app in PRODUCT_APPS
        for path in sorted((ROOT / app).rglob("*.py"))
        for name in _imported_modules(path)
        if name == "demo" or name.startswith("demo.")
    ]
    assert offenders == []


def test_the_demo_generators_are_no_longer_in_the_product_apps():
    for app in PRODUCT_APPS:
        assert not (ROOT / app / "demo.py").exists(), app
    assert not (ROOT / "leadrecord" / "management" / "commands" / "seed_demo.py").exists()
