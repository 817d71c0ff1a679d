"The package's shape: modules in lesson order (no import of a later lesson, no cycle), small functions."
import ast, re
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1]/'gpt2_nb'
MAX_FUNCTION_LINES = 60


def lessons(pkg: Path = PKG) -> dict:
    "Each module's lesson number, from its 'File to edit' header; the core appendix (9x) is the ground floor, -1."
    out = {}
    for p in pkg.glob('*.py'):
        m = re.search(r"File to edit: \.\./nbs/(\d+)_", p.read_text())
        if m: out[p.stem] = -1 if int(m.group(1)) >= 90 else int(m.group(1))
    return out


def imported_modules(path: Path) -> set:
    "The gpt2_nb modules a file imports anywhere (top level or inside a function), by any form of import."
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            mod = ('gpt2_nb.' + node.module if node.module else 'gpt2_nb') if node.level else node.module or ''
            if mod == 'gpt2_nb': found |= {a.name for a in node.names}
            elif mod.startswith('gpt2_nb.'): found.add(mod.split('.')[1])
        elif isinstance(node, ast.Import):
            found |= {a.name.split('.')[1] for a in node.names if a.name.startswith('gpt2_nb.')}
        elif isinstance(node, ast.Call) and getattr(node.func, 'attr', getattr(node.func, 'id', '')) == 'import_module':
            arg = node.args[0] if node.args else None
            if isinstance(arg, ast.Constant) and str(arg.value).startswith('gpt2_nb.'): found.add(arg.value.split('.')[1])
    return found


def later_imports(pkg: Path = PKG) -> list:
    "'a (lesson i) imports b (lesson j)' for every import of a module of the same or a later lesson."
    order, bad = lessons(pkg), []
    for mod, k in sorted(order.items()):
        for other in sorted(imported_modules(pkg/f'{mod}.py') - {mod}):
            if other in order and order[other] >= k:
                bad.append(f"{mod} (lesson {k}) imports {other} (lesson {order[other]})")
    return bad


def test_every_module_has_a_lesson():
    mods = {p.stem for p in PKG.glob('*.py') if not p.stem.startswith('_')}
    assert mods == set(lessons()), mods ^ set(lessons())


def test_modules_import_only_earlier_lessons():
    assert later_imports() == []


def test_the_check_sees_a_later_import(tmp_path):
    "The rule is not vacuous: a module given an import of a later lesson (here, inside a function) is reported."
    order = lessons()
    first, last = min(order, key=order.get), max(order, key=order.get)
    for p in PKG.glob('*.py'): (tmp_path/p.name).write_text(p.read_text())
    (tmp_path/f'{first}.py').write_text((tmp_path/f'{first}.py').read_text() + f"\ndef _f():\n    from .{last} import x\n")
    assert later_imports(tmp_path) == [f"{first} (lesson {order[first]}) imports {last} (lesson {order[last]})"]


def long_functions(limit: int = MAX_FUNCTION_LINES) -> list:
    out = []
    for p in sorted(PKG.glob('*.py')):
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > limit:
                out.append(f"{p.stem}.{node.name}: {node.end_lineno - node.lineno + 1} lines")
    return out


def test_functions_are_short():
    assert long_functions() == []


def test_console_scripts_resolve():
    "Every command settings.ini installs names a function that exists (a moved function must move its entry point too)."
    import configparser, importlib
    cfg = configparser.ConfigParser(); cfg.read(PKG.parent/'settings.ini')
    entries = [e.strip() for e in cfg['DEFAULT']['console_scripts'].split('\n') if e.strip()]
    assert len(entries) == 5, entries
    for e in entries:
        name, target = e.split('=')
        mod, func = target.split(':')
        assert callable(getattr(importlib.import_module(mod), func, None)), f"{name}: {target} does not exist"
