"""Without a browser: where the templates live and how their names resolve.

Each feature package keeps its templates in `api/<package>/templates/`, and a template's name is
`<package>/<file>`, read from that folder only (api.web.templating.template_loader); the shared
layout and macros are api/web's (`web/base.html`, `web/_macros.html`, `web/_map.html`). A page
module renders, and a template imports, only its own package's templates and the shared ones."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from jinja2 import Environment, TemplateNotFound, meta

from api.web.templating import API_DIR, environment, template_dirs, template_loader

SHARED = "web"


def _files() -> dict[str, Path]:
    """Every template file by the name it is rendered under."""
    return {
        f"{package}/{path.relative_to(folder).as_posix()}": path
        for package, folder in template_dirs().items()
        for path in sorted(folder.rglob("*.html"))
    }


def _package(path: Path) -> str | None:
    """The `api` package a module or template belongs to (None: a module of `api` itself)."""
    parts = path.relative_to(API_DIR).parts
    return parts[0] if len(parts) > 1 else None


def _may_use(package: str | None, name: str) -> bool:
    return name.split("/", 1)[0] in {package, SHARED}


def test_two_packages_shipping_the_same_file_name_keep_apart(tmp_path: Path) -> None:
    for package in ("alpha", "beta"):
        (tmp_path / package / "templates").mkdir(parents=True)
        (tmp_path / package / "templates" / "list.html").write_text(package, encoding="utf-8")
    (tmp_path / "gamma").mkdir()  # a package without templates adds no name
    env = Environment(loader=template_loader(tmp_path), autoescape=True)

    assert sorted(env.list_templates()) == ["alpha/list.html", "beta/list.html"]
    assert env.get_template("alpha/list.html").render() == "alpha"
    assert env.get_template("beta/list.html").render() == "beta"
    with pytest.raises(TemplateNotFound):  # no name without its package: nothing to choose
        env.get_template("list.html")


def test_every_template_file_has_exactly_one_name() -> None:
    files = _files()
    assert {"web/base.html", "web/_macros.html", "coordination/coord_list.html"} <= set(files)
    # No template outside a package's templates folder, where the loader would never read it.
    stray = [
        p.relative_to(API_DIR).as_posix()
        for p in API_DIR.rglob("*.html")
        if "node_modules" not in p.parts and p not in files.values()
    ]
    assert stray == []
    env = environment()
    assert env.loader is not None
    assert sorted(env.list_templates(extensions=["html"])) == sorted(files)
    for name, path in files.items():
        _source, filename, _uptodate = env.loader.get_source(env, name)
        assert filename is not None and Path(filename).resolve() == path.resolve(), name


def _rendered(module: Path) -> list[tuple[int, str | None]]:
    """(line, template name) of every `render(...)` of api.web.templating in `module`; the name
    is None when it is not a string literal."""
    tree = ast.parse(module.read_text(encoding="utf-8"))
    local = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "api.web.templating"
        for alias in node.names
        if alias.name == "render"
    }
    found: list[tuple[int, str | None]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in local:
            arg = node.args[1] if len(node.args) > 1 else None
            arg = next((k.value for k in node.keywords if k.arg == "name"), arg)
            name = arg.value if isinstance(arg, ast.Constant) else None
            found.append((node.lineno, name if isinstance(name, str) else None))
    return found


def test_every_page_module_renders_its_own_packages_templates() -> None:
    files = _files()
    wrong: list[str] = []
    count = 0
    for module in sorted(API_DIR.rglob("*.py")):
        if "node_modules" in module.parts:
            continue
        for line, name in _rendered(module):
            count += 1
            where = f"{module.relative_to(API_DIR).as_posix()}:{line}"
            if name is None:
                wrong.append(f"{where}: the template name is not a string literal")
            elif name not in files:
                wrong.append(f"{where}: {name} does not exist")
            elif not _may_use(_package(module), name):
                wrong.append(f"{where}: {name} belongs to another package")
    assert count >= 40  # the scan found the pages' render calls
    assert wrong == []


def test_every_template_imports_its_own_packages_templates() -> None:
    files = _files()
    env = environment()
    wrong: list[str] = []
    for name, path in files.items():
        package = name.split("/", 1)[0]
        tree = env.parse(path.read_text(encoding="utf-8"), name=name, filename=str(path))
        for ref in meta.find_referenced_templates(tree):
            if ref is None:
                wrong.append(f"{name}: a template name that is not a string literal")
            elif ref not in files:
                wrong.append(f"{name}: {ref} does not exist")
            elif not _may_use(package, ref):
                wrong.append(f"{name}: {ref} belongs to another package")
    assert wrong == []
