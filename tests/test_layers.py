"""Data flows one way: no module imports one on a higher layer (README, "Architecture")."""

import ast

import pytest

from conftest import REPO

# Low to high; a module may import its own layer and those below it.
LAYERS = (("common", "metrics"), ("data",), ("models",), ("pipeline",), ("webapp",))
TOP = len(LAYERS)  # entry points and tools


def layer_of(module: str) -> int | None:
    """The layer of a toolkit module (None: a library from elsewhere)."""
    head = module.split(".")[0]
    for level, packages in enumerate(LAYERS):
        if head in packages:
            return level
    if head == "tools" or (REPO / f"{head}.py").is_file():
        return TOP
    return None


def imported_modules(path) -> list[tuple[int, str]]:
    """Every module ``path`` imports, at any depth of its code (a function's imports count too)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names
                      if node.module in {p for layer in LAYERS for p in layer}]  # `from data import x`
    return found


PACKAGES = tuple(p for layer in LAYERS for p in layer if (REPO / p).is_dir()) + ("tools", "maintenance")


def toolkit_files():
    """The entry points and the packages' modules (not what a run or a tool leaves in the tree)."""
    paths = sorted(REPO.glob("*.py")) + sorted(p for package in PACKAGES for p in (REPO / package).rglob("*.py"))
    for path in paths:
        yield path.relative_to(REPO)


def test_no_module_imports_one_on_a_higher_layer():
    upward = []
    for relative in toolkit_files():
        own = layer_of(".".join(relative.with_suffix("").parts))
        for line, module in imported_modules(REPO / relative):
            target = layer_of(module)
            if own is not None and target is not None and target > own:
                upward.append(f"{relative}:{line} imports {module}")
    assert not upward, "imports that climb a layer:\n" + "\n".join(upward)


@pytest.mark.parametrize("source, module", [("data/x.py", "models.families"), ("common/x.py", "data.annotations"),
                                            ("models/x.py", "pipeline.training"), ("pipeline/x.py", "webapp.page")])
def test_the_check_sees_an_upward_import(tmp_path, source, module):
    path = tmp_path / "x.py"
    path.write_text(f"def f():\n    from {module} import thing\n")
    [(_, found), *_] = imported_modules(path)
    assert layer_of(found) > layer_of(".".join(source[:-3].split("/")))
