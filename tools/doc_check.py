"""Checks of the notebooks as documentation, fast enough for CI (nothing is executed).

1. Every lesson opens with a title (`# ...`) and a one-line summary (`> ...`) in its first markdown cell.
2. No cell that nbdev's docs processing executes holds more than imports or definitions. nbdev's `exec_show_docs`
   runs every exported cell, every `show_doc` cell and every cell that contains an import: a test cell that also imports
   something would run during `nbdev_proc_nbs`/`nbdev_docs` — slowly, and outside the tests.
3. The public API is documented: exported functions and classes get their `show_doc` from nbdev automatically; every
   public method with a docstring of an exported class needs a `show_doc(Class.method)` cell.
4. No parameter comment in an exported signature (`x:int=1, # what it is`) holds a backtick: nbdev turns backticked
   names into markdown links, which show as `[`X`](https://…)` text inside the rendered signature.
5. Every lesson can be read in a sitting: at most 45,000 characters of markdown and code (leading indentation not
   counted), no code cell over 4,000.
6. Every number in prose is true: a number in a markdown cell that looks measured (a decimal, a count of 100 or more,
   a percentage or ratio, a date) must appear in an output or the code of its notebook (the front page: of any lesson),
   rounded as the prose rounds it, or sit in a sentence that cites its source with a link. Inline code and math
   ($...$) are not prose. Prose that restates an output goes stale when the output is re-recorded: refer to the
   output, or print the sentence from the measured values.
7. The sidebar (nbs/sidebar.yml, written by hand) lists every notebook, so no lesson is left out of the course.

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
    # one `>` line: nbdev takes the page's description from the first line only, so a second one would be lost
    return (md is not None and re.search(r'^# \S', md.source, re.M) is not None
            and len(re.findall(r'^> \S', md.source, re.M)) == 1 and not re.search(r'^>\s*$', md.source, re.M))


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

def reading_length(text:str) -> int:
    "Characters a reader reads: leading indentation (which wrapping code to the column adds) does not count."
    return sum(len(l.lstrip(' ')) for l in text.splitlines())


def too_long(nb) -> list:
    "What makes a lesson too long to read in a sitting: its size, and its code cells over the limit."
    out, total = [], sum(reading_length(c.source) for c in nb.cells)
    if total > MAX_LESSON: out.append(f"{total:,} characters of markdown and code (at most {MAX_LESSON:,})")
    out += [f"code cell {i} has {reading_length(c.source):,} characters (at most {MAX_CELL:,})"
            for i, c in enumerate(nb.cells) if c.cell_type == 'code' and reading_length(c.source) > MAX_CELL]
    return out


# --- 6. numbers in prose ---
SUMMARY_PAGES = {'index.ipynb', 'results.ipynb'}   # pages that sum up the lessons: their numbers come from any lesson


# A number as prose writes it: 2,222  4.54  0.3114  6e-3  2.3e-03  23%  1.26x  2026-12-05
NUMBER = re.compile(r'(?<![\w.\-/^#@$])(\d{4}-\d{2}-\d{2}|(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?)(?![\w.\-]\w|\w)(\s?[%×x])?')
INLINE_CODE = re.compile(r'`[^`\n]*`')
LINK_TARGET = re.compile(r'\]\([^)]*\)|https?://\S+|<[^>]+>')
CITED = re.compile(r'\]\(https?://|\[\^\w+\]')
LESSON_REF = re.compile(r'(lessons?|Lessons?|#|step|steps|issue|chapter|section|§)\s*$')

def _value(s):
    "A number's value and the decimal places it states (None for a date)."
    if re.fullmatch(r'\d{4}-\d{2}-\d{2}', s): return s, None
    s = s.replace(',', '')
    m = re.fullmatch(r'(\d+)(?:\.(\d+))?(?:[eE]([-+]?\d+))?', s)
    return float(s), (len(m.group(2) or ''), int(m.group(3) or 0), m.group(3) is not None)

def counts(tok, suffix):
    "Is this prose number a measured figure the rule checks? Small counts (under 100, no decimals) are not, unless a % or x follows."
    if re.fullmatch(r'\d{4}-\d{2}-\d{2}', tok): return True
    plain = tok.replace(',', '')
    if re.fullmatch(r'\d+', plain) and int(plain) < 100 and not suffix: return False
    if re.fullmatch(r'(19|20)\d\d', plain): return False   # a year
    if re.fullmatch(r'\d+', plain) and (int(plain) & (int(plain) - 1)) == 0: return False  # a power of two: a shape
    return True

def matches(tok, pool):
    v, d = _value(tok)
    if d is None: return tok in pool['dates']
    dec, exp, sci = d
    for u in pool['values']:
        if sci:
            if u == 0: continue
            if round(u / 10**exp, dec) == round(v / 10**exp, dec): return True
        elif round(u, dec) == round(v, dec) and (v != 0 or u == 0): return True
    return False

def pool_of(nbs):
    "The numbers of the outputs and code of notebooks `nbs` (json dicts)."
    vals, dates = set(), set()
    for nb in nbs:
        for c in nb['cells']:
            texts = [''.join(c['source'])] if c['cell_type'] == 'code' else []
            for o in c.get('outputs', []):
                texts.append(''.join(o.get('text', '')))
                for k, t in o.get('data', {}).items():
                    if k.startswith('text/'): texts.append(''.join(t))
            for t in texts:
                for s in re.findall(r'\d{4}-\d{2}-\d{2}', t): dates.add(s)
                for s in re.findall(r'(?<![\w.])(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?', t):
                    try: vals.add(_value(s)[0])
                    except (ValueError, AttributeError, TypeError): pass
    return {'values': vals, 'dates': dates}

def units(md):
    "The sentences and table rows of a markdown cell (comments and math removed)."
    md = re.sub(r'<!--.*?-->', '', md, flags=re.S)
    md = re.sub(r'\$\$.*?\$\$|\$[^$\n]+\$', ' ', md, flags=re.S)  # math derives, it does not measure
    for block in re.split(r'\n\s*\n', md):
        lines = block.splitlines()
        if any(l.lstrip().startswith('|') for l in lines):
            for l in lines: yield l
            continue
        for s in re.split(r'(?<=[.!?:;])\s+(?=[A-Z(*])', ' '.join(lines)): yield s

def stale_numbers(nb, pool):
    "[(cell, number, sentence)] for each measured-looking number in markdown that no output or code of `pool` holds."
    out = []
    for i, c in enumerate(nb['cells']):
        if c['cell_type'] != 'markdown': continue
        for u in units(''.join(c['source'])):
            if CITED.search(u): continue
            text = LINK_TARGET.sub(']', INLINE_CODE.sub(' ', u))
            for m in NUMBER.finditer(text):
                tok, suf = m.group(1), m.group(2)
                if LESSON_REF.search(text[:m.start()]): continue
                if counts(tok, suf) and not matches(tok, pool): out.append((i, tok, u.strip()))
    return out


if __name__ == '__main__':
    root = Path(sys.argv[1] if len(sys.argv) > 1 else 'nbs')
    problems = []
    raw = {p.name: json.loads(p.read_text()) for p in sorted(root.glob('*.ipynb'))}
    every = pool_of(raw.values())
    for p in sorted(root.glob('*.ipynb')):
        pool = every if p.name in SUMMARY_PAGES else pool_of([raw[p.name]])
        problems += [f"{p.name} cell {i}: the number {t} is in no output or code{' of any lesson' if p.name in SUMMARY_PAGES else ''}"
                     f" (refer to the output, print it, or cite its source): {u[:90]}" for i, t, u in stale_numbers(raw[p.name], pool)]
        if not title_and_summary(read_nb(p)): problems.append(f"{p.name}: no '# title' and one-line '> summary' in its first markdown cell")
        problems += [f"{p.name} cell {i}: imports mixed with other code: {first}" for i, first in mixed_cells(p)]
        problems += [f"{p.name}: no show_doc({m})" for m in undocumented_methods(p)]
        problems += [f"{p.name} cell {i}: backticks in a parameter comment of {n}(): {c}" for i, n, c in signature_backticks(p)]
        if p.name != 'index.ipynb': problems += [f"{p.name}: {t}" for t in too_long(read_nb(p))]
    side = (root/'sidebar.yml').read_text() if (root/'sidebar.yml').exists() else ''
    problems += [f"{p.name}: not in {root.name}/sidebar.yml: add it to its section" for p in sorted(root.glob('*.ipynb'))
                 if not p.name.startswith(('_', '.')) and p.name not in side]
    print('\n'.join(problems) if problems else f"docs checks passed: {len(list(root.glob('*.ipynb')))} notebooks")
    sys.exit(1 if problems else 0)
