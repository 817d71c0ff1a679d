"""Checks of the notebooks as documentation, fast enough for CI (nothing is executed).

1. Every lesson opens with a title (`# ...`) and a summary (`> ...`) in its first markdown cell.
2. No cell that nbdev's docs processing executes holds more than imports or definitions. nbdev's `exec_show_docs`
   runs every exported cell, every `show_doc` cell and every cell that contains an import: a test cell that also imports
   something would run during `nbdev_proc_nbs`/`nbdev_docs` — slowly, and outside the tests.
3. The public API is documented: exported functions and classes get their `show_doc` from nbdev automatically; every
   public method with a docstring of an exported class needs a `show_doc(Class.method)` cell.
4. No parameter comment in an exported signature (`x:int=1, # what it is`) holds a backtick: nbdev turns backticked
   names into markdown links, which show as `[`X`](https://…)` text inside the rendered signature.
5. Every lesson can be read in a sitting: at most 45,000 characters of markdown and code, no code cell over 4,000.

    python tools/doc_check.py [nbs]     # prints what it found; exit 1 if any check fails
"""
import ast, importlib, inspect, io, json, re, sys, tokenize, warnings
from pathlib import Path

from execnb.nbio import read_nb
from nbdev.process import NBProcessor
from nbdev.processors import _do_eval

SHOW_DIRECTIVES = {'export', 'exports', 'exporti', 'exec_doc'}


def title_and_summary(nb) -> bool:
    md = next((c for c in nb.cells if c.cell_type == 'markdown'), None)
    return md is not None and re.search(r'^# \S', md.source, re.M) is not None and re.search(r'^> \S', md.source, re.M) is not None


def mixed_cells(nb_path):
    "The cells nbdev's docs processing would execute that hold more than imports: [(index, first line)]."
    nb = read_nb(nb_path)
    NBProcessor(nb_path, [], nb=nb).process()  # parses each cell's directives
    out = []
    for i, c in enumerate(nb.cells):
        if c.cell_type != 'code' or c.directives_.keys() & SHOW_DIRECTIVES or 'show_doc' in c.source: continue
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            if not _do_eval(c): continue
        if any(not isinstance(n, (ast.Import, ast.ImportFrom)) for n in ast.parse(c.source).body):
            out.append((i, c.source.splitlines()[0][:80]))
    return out


def undocumented_methods(nb_path):
    "Public methods, with a docstring, of the classes the notebook's module exports, that no `show_doc` cell shows."
    nb = read_nb(nb_path)
    m = re.search(r'^#\|\s*default_exp\s+(\S+)', '\n'.join(c.source for c in nb.cells), re.M)
    if not m: return []
    mod = importlib.import_module(f'gpt2_nb.{m.group(1)}')
    shown = set(re.findall(r'show_doc\(([\w.]+)', '\n'.join(c.source for c in nb.cells)))
    missing = []
    for name in getattr(mod, '__all__', []):
        cls = getattr(mod, name)
        if not inspect.isclass(cls) or cls.__module__ != mod.__name__: continue
        for k, v in vars(cls).items():
            f = v.__func__ if isinstance(v, (classmethod, staticmethod)) else v.fget if isinstance(v, property) else v
            if k.startswith('_') or not callable(f) or not getattr(f, '__doc__', None): continue
            if f'{name}.{k}' not in shown: missing.append(f'{name}.{k}')
    return missing


def signature_backticks(nb_path):
    "Comments with a backtick inside the parameter list of a `def` in an exported cell: [(index, def name, comment)]."
    out = []
    for i, c in enumerate(read_nb(nb_path).cells):
        if c.cell_type != 'code' or not re.search(r'^#\|\s*export', c.source, re.M): continue
        try: toks = list(tokenize.generate_tokens(io.StringIO(c.source).readline))
        except (tokenize.TokenError, SyntaxError, IndentationError): continue
        name, depth = None, 0
        for a, b in zip(toks, toks[1:]):
            if a.type == tokenize.NAME and a.string == 'def' and depth == 0: name = b.string; continue
            if name is None: continue
            if b.type == tokenize.OP and b.string in '([{': depth += 1
            elif b.type == tokenize.OP and b.string in ')]}':
                depth -= 1
                if depth == 0: name = None
            elif b.type == tokenize.COMMENT and '`' in b.string: out.append((i, name, b.string))
    return out


MAX_LESSON, MAX_CELL = 45_000, 4_000

def too_long(nb) -> list:
    "What makes a lesson too long to read in a sitting: its size, and its code cells over the limit."
    out, total = [], sum(len(c.source) for c in nb.cells)
    if total > MAX_LESSON: out.append(f"{total:,} characters of markdown and code (at most {MAX_LESSON:,})")
    out += [f"code cell {i} has {len(c.source):,} characters (at most {MAX_CELL:,})" for i, c in enumerate(nb.cells)
            if c.cell_type == 'code' and len(c.source) > MAX_CELL]
    return out


if __name__ == '__main__':
    root = Path(sys.argv[1] if len(sys.argv) > 1 else 'nbs')
    problems = []
    for p in sorted(root.glob('*.ipynb')):
        if not title_and_summary(read_nb(p)): problems.append(f"{p.name}: no '# title' and '> summary' in its first markdown cell")
        problems += [f"{p.name} cell {i}: imports mixed with other code: {first}" for i, first in mixed_cells(p)]
        problems += [f"{p.name}: no show_doc({m})" for m in undocumented_methods(p)]
        problems += [f"{p.name} cell {i}: backticks in a parameter comment of {n}(): {c}" for i, n, c in signature_backticks(p)]
        if p.name != 'index.ipynb': problems += [f"{p.name}: {t}" for t in too_long(read_nb(p))]
    print('\n'.join(problems) if problems else f"docs checks passed: {len(list(root.glob('*.ipynb')))} notebooks")
    sys.exit(1 if problems else 0)
