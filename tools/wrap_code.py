"""Wrap the code cells of notebooks so that no line is wider than the rendered docs column (81 characters).

    python tools/wrap_code.py [--width 81] [--check] nbs/02_data.ipynb [nbs/03_loader.ipynb ...]

Why: code cells hold lines of up to ~200 characters; the docs column shows 81, so the rest scrolls out of sight.
Only the statements with a line that is too long change; all other lines stay byte-identical (the compact fastai
style stays).
Per too-long line, the first technique that applies:
1. a full-line comment is rewrapped at its indentation (`#| ...` nbdev directives are left alone and reported);
2. a trailing comment moves, wrapped, onto its own line(s) above the line (not a docment: the comment of a parameter
   in a `def` or of a field in a class body must stay on its line, so those are reported);
3. a code line, the first of these that makes it fit (else the one that shortens it most):
   a. a one-line `if x: stmt` split after its header, its statement then shortened by b-d;
   b. black (string processing on: long strings become adjacent pieces; hanging indents) on just the smallest
      simple statement(s) on the line, else the compound statement's header (`def f(...):`);
   c. broken after commas inside brackets, each new line aligned after its bracket (`from m import a, b` gets its
      brackets first);
   d. a string literal inside brackets split at spaces into adjacent literals (what black could not split);
0. before all that, every cell is tidied: a statement whose continuation lines sit far to the right, aligned under
   a bracket (what step c makes of a long call, hard to read), is reformatted by black with hanging indents, and a
   statement after `; ` that spans lines first moves to its own line;
4. a line of a triple-quoted docstring is rewrapped; a long one-line docstring is reported (nbdev shows docstrings
   as they are, and they are the API's summary: a person decides how to shorten them);
5. text in other multi-line strings and cells that are not Python (`%%` magics, `!` shell lines) are reported.
Proof that nothing else changed, per edit and per cell: `ast.dump` of the cell before and after is the same, once
adjacent string pieces are merged and docstring whitespace is normalised; the cell must also compile. An edit that
fails the proof is undone and reported. The notebook JSON is written as nbdev_clean writes it (indent 1, UTF-8).
`--check` changes nothing: it prints each line over the width (notebook, cell, length) and exits 1 if there is any.
"""
import argparse, ast, io, json, re, sys, textwrap, tokenize
from pathlib import Path

COMPOUND = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.If, ast.For, ast.AsyncFor, ast.While, ast.With,
            ast.AsyncWith, ast.Try, ast.ExceptHandler)


# ---- notebooks -------------------------------------------------------------------------------------------------
def read_nb(path): return json.loads(Path(path).read_text(encoding='utf-8'))
def write_nb(path, nb): Path(path).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n', encoding='utf-8')
def source(cell) -> str: return ''.join(cell['source']) if isinstance(cell['source'], list) else cell['source']
def overflow(lines, width): return sum(max(0, len(l) - width) for l in lines)
def long_lines(src, width): return [(i, len(l)) for i, l in enumerate(src.split('\n')) if len(l) > width]


# ---- the proof ---------------------------------------------------------------------------------------------------
class Normalise(ast.NodeTransformer):
    "What may change: f-string pieces (merged, empty ones dropped) and the whitespace of docstrings."
    def visit_JoinedStr(self, node):
        self.generic_visit(node)
        vals = []
        for v in node.values:
            if isinstance(v, ast.Constant) and vals and isinstance(vals[-1], ast.Constant):
                vals[-1] = ast.Constant(vals[-1].value + v.value)
            elif not (isinstance(v, ast.Constant) and v.value == ''): vals.append(v)
        if all(isinstance(v, ast.Constant) for v in vals): return ast.Constant(''.join(v.value for v in vals))
        node.values = vals
        return node

    def generic_visit(self, node):
        body = getattr(node, 'body', None)
        doc = body[0].value if isinstance(body, list) and body and isinstance(body[0], ast.Expr) else None
        if isinstance(doc, ast.Constant) and isinstance(doc.value, str): doc.value = ' '.join(doc.value.split())
        return super().generic_visit(node)


def fingerprint(src):
    "The cell's AST, normalised, as a string (None if it does not parse or compile)."
    try:
        compile(src, '<cell>', 'exec')
        return ast.dump(Normalise().visit(ast.parse(src)))
    except (SyntaxError, ValueError): return None


# ---- what a line is ------------------------------------------------------------------------------------------------
def scan(src):
    "The tokens of `src` that matter: {row: (col, comment)} and the rows inside multi-line strings."
    comments, in_string = {}, set()
    for t in tokenize.generate_tokens(io.StringIO(src).readline):
        if t.type == tokenize.COMMENT: comments[t.start[0]] = (t.start[1], t.string)
        if t.type == tokenize.STRING and t.end[0] > t.start[0]: in_string.update(range(t.start[0], t.end[0] + 1))
    return comments, in_string


def docstring_rows(tree):
    "The rows of the docstrings of module, classes and functions."
    rows = set()
    for n in ast.walk(tree):
        b = getattr(n, 'body', None)
        if isinstance(b, list) and b and isinstance(b[0], ast.Expr) and isinstance(b[0].value, ast.Constant) \
           and isinstance(b[0].value.value, str): rows.update(range(b[0].lineno, b[0].end_lineno + 1))
    return rows


def is_docment(tree, row):
    "Is `row` a line whose trailing comment documents something: a `def`'s parameter, a field of a class body?"
    for n in ast.walk(tree):
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.lineno <= row < n.body[0].lineno: return True
        if isinstance(n, ast.ClassDef) and any(isinstance(s, ast.AnnAssign) and s.lineno <= row <= s.end_lineno
                                               for s in n.body): return True
    return False


# ---- techniques ----------------------------------------------------------------------------------------------------
def wrap_comment(text, indent, width, mark='# '):
    "Comment `text` as lines of at most `width`, at `indent`."
    return [indent + mark + w for w in textwrap.wrap(text, max(width - len(indent) - len(mark), 20),
                                                       break_long_words=False, break_on_hyphens=False)]


def fix_comment(lines, i, width):
    "A full-line comment rewrapped, with the comment lines around it at its indentation (one paragraph)."
    m = re.match(r'(\s*)(#+ ?)(.*)', lines[i])
    same = lambda l: l.startswith(m.group(1) + m.group(2)) and l[len(m.group(1) + m.group(2)):][:1] not in ('|', ' ', '')
    a, b = i, i + 1
    while a > 0 and same(lines[a-1]): a -= 1
    while b < len(lines) and same(lines[b]): b += 1
    text = ' '.join(l[len(m.group(1) + m.group(2)):] for l in lines[a:b])
    return lines[:a] + wrap_comment(text, m.group(1), width, m.group(2)) + lines[b:]


def move_comment(lines, i, col, comment, width):
    "A trailing comment moved, wrapped, onto its own line(s) above its code."
    indent = re.match(r'\s*', lines[i]).group()
    text = re.sub(r'^#+\s*', '', comment)
    return lines[:i] + wrap_comment(text, indent, width) + [lines[i][:col].rstrip()] + lines[i+1:]


def fix_docstring(lines, i, width):
    "A line of a triple-quoted docstring, rewrapped (list items keep their hanging indent)."
    m = re.match(r'(\s*)((?:[-*]|\d+\.) )?(.*)', lines[i])
    indent, item, text = m.group(1), m.group(2) or '', m.group(3)
    if text.startswith(('"""', "'''")): indent, item, text = indent + text[:3], '', text[3:]
    out = textwrap.wrap(item + text, width - len(indent), break_long_words=False, break_on_hyphens=False)
    if len(out) < 2: return None
    rest = re.match(r'\s*', lines[i]).group() + ' ' * len(item)
    return lines[:i] + [indent + out[0]] + [rest + l for l in out[1:]] + lines[i+1:]


def blacken(code, width):
    "`code` formatted by black at line length `width`, its long strings split (None if black fails)."
    import black
    mode = black.Mode(line_length=width, string_normalization=False, preview=True,
                      enabled_features={black.Preview.string_processing})
    try: return black.format_str(code, mode=mode).rstrip('\n').split('\n')
    except Exception: return None


def indented(out, first, indent):
    "Black's lines placed back: `first` before the first, `indent` before the others (not inside strings)."
    _, in_string = scan('\n'.join(out))
    return [first + out[0]] + [l if (r in in_string and r - 1 in in_string) or not l else indent + l
                               for r, l in enumerate(out[1:], 2)]


def simple_unit(tree, row):
    "The first and last rows of the simple statements on `row` (with those sharing their lines), and the statements."
    simple = [n for n in ast.walk(tree) if isinstance(n, ast.stmt) and not hasattr(n, 'body')]
    a = b = row
    while True:
        picked = [n for n in simple if n.lineno <= b and n.end_lineno >= a]
        if not picked: return None
        a2, b2 = min(n.lineno for n in picked), max(n.end_lineno for n in picked)
        if (a2, b2) == (a, b): return a, b, sorted(picked, key=lambda n: (n.lineno, n.col_offset))
        a, b = a2, b2


def header_unit(tree, lines, row):
    "The innermost compound statement whose header holds `row`: (first row, last row of its header), or None."
    heads = [n for n in ast.walk(tree) if isinstance(n, COMPOUND) and n.lineno <= row < n.body[0].lineno]
    if not heads: return None
    a, b = max(n.lineno for n in heads), min(n.body[0].lineno for n in heads) - 1
    while b > a and (not lines[b-1].strip() or lines[b-1].lstrip().startswith('#')): b -= 1
    return a, b


def reblack(lines, a, b, width, prefix=None, body=''):
    "Rows `a`..`b` (1-based) reformatted by black, after `prefix` (default: the indentation) kept as it is."
    indent = re.match(r'\s*', lines[a-1]).group()
    prefix = indent if prefix is None else prefix
    _, in_string = scan('\n'.join(lines))
    rest = [l if r in in_string and r - 1 in in_string else l[len(indent):] if l.startswith(indent) else l
            for r, l in enumerate(lines[a:b], a + 1)]
    text = '\n'.join([lines[a-1][len(prefix):]] + rest)
    before = {'elif': 'if _:\n    pass\n', 'else': 'if _:\n    pass\n', 'except': 'try:\n    pass\n',
              'finally': 'try:\n    pass\n'}.get(re.match(r'[a-z]*', text).group(), '')
    out = blacken(before + text + body, width - len(prefix))
    if not out: return None
    out = out[before.count('\n'):len(out) - body.count('\n')]
    return lines[:a-1] + indented(out, prefix, indent) + lines[b:]


def fix_statement(lines, tree, row, width):
    "The statement(s) on `row` reformatted by black; the new lines, or None."
    unit = simple_unit(tree, row)
    if unit:
        a, b, picked = unit
        first = picked[0]
        prefix = lines[a-1][:first.col_offset]
        if not prefix.strip(): return reblack(lines, a, b, width)
        if width - len(prefix) >= 30 and len(picked) == 1:     # `if x: stmt`: stmt after the header, if it fits
            new = reblack(lines, a, b, width, prefix)
            if new and max(len(l) for l in new[a-1:len(new) - len(lines) + b]) <= width: return new
        parent = next(n for n in ast.walk(tree) if isinstance(n, COMPOUND) and first in ast.iter_child_nodes(n))
        return reblack(lines, parent.lineno, parent.end_lineno, width)
    head = header_unit(tree, lines, row)
    if not head: return None
    a, b = head
    return reblack(lines, a, b, width, body='\n    pass')


def fill(lines, i, width):
    "Line `i` broken after commas inside brackets, greedily, each new line aligned after its open bracket."
    stack, cands, prev, run = [], [], None, None
    for t in tokenize.generate_tokens(io.StringIO('\n'.join(lines)).readline):
        if t.type == tokenize.OP and t.string in '([{': stack.append(t.start)
        elif t.type == tokenize.OP and t.string in ')]}': stack.pop()
        elif t.type == tokenize.OP and t.string == ',' and t.start[0] == i + 1 and stack:
            cands.append((t.end[1], stack[-1]))
        if t.type == tokenize.STRING:           # between adjacent string pieces: aligned under the first piece
            if (prev is not None and prev.type == tokenize.STRING and prev.end[0] == t.start[0] == i + 1
                    and stack):
                cands.append((prev.end[1], (run[0], run[1] - 1)))
            else: run = t.start
        if t.type not in (tokenize.NL, tokenize.COMMENT): prev = t
    line, pieces = lines[i], [(0, 0)]            # pieces: (column in `line` where it starts, column it is shown at)
    while pieces[-1][1] + len(line) - pieces[-1][0] > width:
        start, ind = pieces[-1]
        ok = [(p, b) for p, b in cands if p > start and ind + p - start <= width and line[p:].strip()]
        if not ok: break
        p, (brow, bcol) = ok[-1]
        if brow < i + 1: col = bcol + 1
        else: s0, i0 = [q for q in pieces if q[0] <= bcol][-1]; col = i0 + bcol - s0 + 1
        pieces.append((len(line) - len(line[p:].lstrip()), col))
    if len(pieces) == 1: return None
    ends = [q[0] for q in pieces[1:]] + [len(line)]
    return lines[:i] + [' ' * ind + line[s:e].rstrip() for (s, ind), e in zip(pieces, ends)] + lines[i+1:]


def bracketed_import(lines, i):
    "`from m import a, b` on line `i` as `from m import (a, b)`, to be broken inside the brackets."
    m = re.fullmatch(r'(\s*from\s+\S+\s+import\s+)([^()#\\]+)', lines[i])
    return lines[:i] + [f'{m.group(1)}({m.group(2).rstrip()})'] + lines[i+1:] if m else lines


def split_header(lines, tree, i):
    "A one-line `if x: stmt` on line `i` as two lines, the statement indented under its header; None if not one."
    unit = simple_unit(tree, i + 1)
    if not unit or unit[0] != i + 1 or not lines[i][:unit[2][0].col_offset].strip(): return None
    col, indent = unit[2][0].col_offset, re.match(r'\s*', lines[i]).group()
    return lines[:i] + [lines[i][:col].rstrip(), indent + '    ' + lines[i][col:]] + lines[i+1:]


def string_pieces(text, width):
    "String literal `text` as adjacent literals each at most `width` long, cut after spaces (not inside `{}`)."
    m = re.match(r'([a-zA-Z]*)(["\'])(.*)\2$', text, re.S)
    if not m or m.group(3).startswith(m.group(2) * 2): return None
    pre, q, body = m.groups()
    room, cands, depth = width - len(pre) - 2, [], 0
    for k, ch in enumerate(body):
        if 'f' in pre.lower() and ch in '{}': depth += 1 if ch == '{' else -1
        elif ch == ' ' and not depth and body[k-1:k] != '\\': cands.append(k + 1)
    cuts, prev = [0], 0
    for c in cands + [len(body)]:
        if c - cuts[-1] > room and prev > cuts[-1]: cuts.append(prev)
        prev = c
    parts = [body[a:b] for a, b in zip(cuts, cuts[1:] + [len(body)])]
    return [f'{pre}{q}{p}{q}' for p in parts] if len(parts) > 1 else None


def split_string(lines, i, width):
    "Line `i` with its string literal that runs past `width` split into adjacent literals (inside brackets only)."
    depth = 0
    for t in tokenize.generate_tokens(io.StringIO('\n'.join(lines)).readline):
        if t.type == tokenize.OP and t.string in '([{': depth += 1
        elif t.type == tokenize.OP and t.string in ')]}': depth -= 1
        elif t.type == tokenize.STRING and t.start[0] == t.end[0] == i + 1 and t.end[1] > width and depth > 0:
            (_, col), (_, end) = t.start, t.end
            pieces = width - col >= 20 and string_pieces(t.string, width - col)
            if not pieces: return None
            line = lines[i]
            new = [line[:col] + pieces[0]] + [' ' * col + p for p in pieces[1:]]
            return lines[:i] + new[:-1] + [new[-1] + line[end:]] + lines[i+1:]
    return None


# ---- driving -------------------------------------------------------------------------------------------------------
def fix_line(src, i, width):
    "Cell `src` with its line `i` (0-based) shortened: (new source or None, what was done or why not)."
    lines, row, tree = src.split('\n'), i + 1, ast.parse(src)
    (comments, in_string), docs = scan(src), docstring_rows(tree)
    stripped = lines[i].lstrip()
    if stripped.startswith('#|'): return None, 'nbdev directive'
    if row in docs:
        if row not in in_string: return None, 'one-line docstring'
        new = fix_docstring(lines, i, width)
        return (new and '\n'.join(new)), 'docstring'
    if row in in_string: return None, 'text in a multi-line string'
    if row in comments:
        col, comment = comments[row]
        if not lines[i][:col].strip(): return '\n'.join(fix_comment(lines, i, width)), 'comment'
        if is_docment(tree, row): return None, 'docment (parameter or field comment)'
        return '\n'.join(move_comment(lines, i, col, comment, width)), 'trailing comment'
    head = header_unit(tree, lines, row)
    if head and any(r in comments for r in range(head[0], head[1] + 1)): return None, 'signature with docments'
    new, how = fix_code(lines, tree, i, width)
    return (new and '\n'.join(new)), how


def fix_code(lines, tree, i, width, split=True):
    "Code line `i` shortened: the first way that makes it fit, else the one that shortens it most."
    goal, best = overflow(lines, width) - overflow([lines[i]], width), (overflow(lines, width), None, 'no way found')
    ways = [('one-line header split', lambda: split and split_line_header(lines, tree, i, width)),
            ('black', lambda: fix_statement(lines, tree, i + 1, width)),
            ('import in brackets, filled', lambda: fill(bracketed_import(lines, i), i, width)),
            ('filled', lambda: fill(lines, i, width)),
            ('string split', lambda: split_string(lines, i, width))]
    for how, way in ways:
        new = way()
        if not new: continue
        score = overflow(new, width)
        if score <= goal: return new, how
        if score < best[0]: best = (score, new, how)
    return best[1:]


def split_line_header(lines, tree, i, width):
    "`if x: stmt` split in two, then its statement line shortened."
    new = split_header(lines, tree, i)
    if not new: return None
    try: return fix_code(new, ast.parse('\n'.join(new)), i + 1, width, split=False)[0] or new
    except SyntaxError: return None


DEEP = 28   # a continuation line this much deeper than its statement sits far right, under a distant bracket

def _indent(line): return len(line) - len(line.lstrip())

def tall_units(tree):
    "Simple statements spread over three lines or more, last first: [(first, last row)]."
    return sorted({(n.lineno, n.end_lineno) for n in ast.walk(tree) if isinstance(n, ast.stmt)
                   and not hasattr(n, 'body') and n.end_lineno - n.lineno >= 2}, reverse=True)


def deep_units(tree, lines):
    "Statements spanning lines whose continuation sits far right (aligned under a bracket): [(first, last row)]."
    out = []
    for n in ast.walk(tree):
        simple = isinstance(n, ast.stmt) and not hasattr(n, 'body')
        one_line = (isinstance(n, (ast.If, ast.For, ast.While, ast.With)) and len(n.body) == 1
                    and lines[n.body[0].lineno - 1][:n.body[0].col_offset].strip()   # `if x: stmt`
                    and not getattr(n, 'orelse', None)
                    and not hasattr(n.body[0], 'body'))
        if not (simple or one_line) or n.end_lineno == n.lineno: continue
        if n.col_offset != _indent(lines[n.lineno - 1]): continue      # shares its line with a header
        base = _indent(lines[n.lineno - 1])
        if any(_indent(lines[r - 1]) >= base + DEEP for r in range(n.lineno + 1, n.end_lineno + 1)):
            out.append((n.lineno, n.end_lineno))
    return sorted(set(out), reverse=True)


def split_semicolons(src):
    "A statement after `; ` whose continuation lines are deep moves to its own line (so it can be reformatted)."
    tree, lines = ast.parse(src), src.split('\n')
    simple = [n for n in ast.walk(tree) if isinstance(n, ast.stmt) and not hasattr(n, 'body')]
    for n in sorted(simple, key=lambda n: (-n.lineno, -n.col_offset)):
        head = lines[n.lineno - 1][:n.col_offset]
        before = [m for m in simple if m.end_lineno == n.lineno and m.end_col_offset <= n.col_offset]
        if not (before and all(m.lineno == n.lineno and m.col_offset == _indent(head) for m in before)): continue
        if n.end_lineno > n.lineno and head.rstrip().endswith(';') and head.strip() != ';':
            indent = ' ' * _indent(lines[n.lineno - 1])
            lines[n.lineno - 1:n.lineno] = [head.rstrip()[:-1].rstrip(), indent + lines[n.lineno - 1][n.col_offset:]]
            return split_semicolons('\n'.join(lines))
    return src


def deep_headers(tree, lines):
    "Headers of compound statements (`if`, `for`, `with`) spanning lines with a deep continuation: [(first, last row)]."
    out = []
    for n in ast.walk(tree):
        if not isinstance(n, (ast.If, ast.For, ast.While, ast.With)) or n.body[0].lineno == n.lineno: continue
        a, b = n.lineno, n.body[0].lineno - 1
        if lines[n.body[0].lineno - 1][:n.body[0].col_offset].strip(): continue   # `if x: stmt`: deep_units' case
        base = _indent(lines[a - 1])
        if b > a and any(_indent(lines[r - 1]) >= base + DEEP for r in range(a + 1, b + 1)): out.append((a, b))
    return sorted(out, reverse=True)


def one_line(code):
    "A statement joined onto one line by black (no magic trailing comma, strings untouched); None if it can't."
    import black
    try: out = black.format_str(code, mode=black.Mode(line_length=10_000, string_normalization=False,
                                                       magic_trailing_comma=False)).rstrip('\n')
    except Exception: return None
    return merge_strings(out) if '\n' not in out else None


def merge_strings(line):
    "Adjacent string literals of the same kind on `line` merged into one (the syntax tree is the same)."
    toks = [t for t in tokenize.generate_tokens(io.StringIO(line).readline)]
    for a, b in zip(toks, toks[1:]):
        ma = re.match(r'([a-zA-Z]*)(["\'])(.*)\2$', a.string, re.S) if a.type == tokenize.STRING else None
        mb = re.match(r'([a-zA-Z]*)(["\'])(.*)\2$', b.string, re.S) if b.type == tokenize.STRING else None
        if not (ma and mb) or ma.group(1, 2) != mb.group(1, 2) or ma.group(3).startswith(ma.group(2) * 2): continue
        if 'f' in ma.group(1).lower() and '{' in ma.group(3) + mb.group(3) and ma.group(3).endswith('{'): continue
        joined = f"{ma.group(1)}{ma.group(2)}{ma.group(3)}{mb.group(3)}{ma.group(2)}"
        return merge_strings(line[:a.start[1]] + joined + line[b.end[1]:])
    return line


def compact(lines, a, b, width):
    """Rows `a`..`b`, a statement black spread one item per line, filled after commas instead (aligned after its
    bracket) when that takes fewer lines, fits `width` and stays shallow; else None."""
    text = '\n'.join(lines[a-1:b])
    indent = ' ' * _indent(lines[a-1])
    if '#' in text or b - a < 2: return None
    joined = one_line(textwrap.dedent(text))
    if joined is None: return None
    new = [indent + joined]
    for _ in range(8):
        if max(map(len, new)) <= width: break
        i = max(range(len(new)), key=lambda k: len(new[k]))
        step = fill(new, i, width) or split_string(new, i, width)
        if not step: return None
        new = step
    if max(map(len, new)) > width or len(new) >= b - a + 1: return None
    if any(_indent(l) >= len(indent) + DEEP for l in new[1:]): return None
    return lines[:a-1] + new + lines[b:]


def tidy_cell(src, width):
    """Statements aligned far to the right under a bracket (what filling after commas makes of a long call)
    reformatted by black with hanging indents; kept only where the proof holds and no line grows past `width`."""
    proof = fingerprint(src)
    if proof is None: return src
    split = split_semicolons(src)
    if fingerprint(split) == proof: src = split
    for a, b in deep_headers(ast.parse(src), src.split('\n')):
        lines = src.split('\n')
        new = reblack(lines, a, b, width, body='\n    pass')
        if new and fingerprint('\n'.join(new)) == proof and max(map(len, new)) <= max(width, *map(len, lines)):
            src = '\n'.join(new)
    for a, b in tall_units(ast.parse(src)):
        lines = src.split('\n')
        new = compact(lines, a, b, width)
        if new and fingerprint('\n'.join(new)) == proof: src = '\n'.join(new)
    for a, b in deep_units(ast.parse(src), src.split('\n')):
        lines = src.split('\n')
        new = reblack(lines, a, b, width)
        if not new: continue
        cand = '\n'.join(new)
        grown = max(map(len, new[a-1:len(new) - len(lines) + b])) > max(width, *map(len, lines[a-1:b]))
        if not grown and fingerprint(cand) == proof: src = cand
    return src


def fix_cell(src, width):
    "Cell `src` with its long lines shortened: (new source, [(line, why it stays long)])."
    proof = fingerprint(src)
    if proof is None: return src, [(l, 'not Python (magic or shell)') for l in src.split('\n') if len(l) > width]
    given_up, problems = set(), []
    src = tidy_cell(src, width)
    for _ in range(1000):
        lines = src.split('\n')
        todo = [i for i, l in enumerate(lines) if len(l) > width and l not in given_up]
        if not todo: break
        i = todo[-1]
        new, how = fix_line(src, i, width)
        if new is not None and fingerprint(new) != proof: new, how = None, f'{how}: AST changed'
        if new is not None and overflow(new.split('\n'), width) >= overflow(lines, width):
            new, how = None, f'{how}: no shorter'
        if new is None:
            given_up.add(lines[i])
            problems.append((lines[i], how))
        else: src = new
    return src, problems


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('notebooks', nargs='+', type=Path)
    ap.add_argument('--width', type=int, default=81)
    ap.add_argument('--check', action='store_true', help='only list the lines over the width; exit 1 if any')
    args, found = ap.parse_args(argv), 0
    for path in args.notebooks:
        nb = read_nb(path)
        cells = [(k, c) for k, c in enumerate(nb['cells']) if c['cell_type'] == 'code']
        before = sum(len(long_lines(source(c), args.width)) for _, c in cells)
        chars = sum(len(source(c)) for c in nb['cells'])
        if args.check:
            for k, c in cells:
                for i, n in long_lines(source(c), args.width): print(f'{path}: cell {k}: line {i + 1}: {n} characters')
            found += before
            continue
        changed, problems = 0, []
        for k, c in cells:
            new, probs = fix_cell(source(c), args.width)
            problems += [(k, l, why) for l, why in probs if len(l) > args.width]
            if new != source(c): c['source'], changed = new.splitlines(keepends=True), changed + 1
        if changed: write_nb(path, nb)
        after = sum(len(long_lines(source(c), args.width)) for _, c in cells)
        print(f'{path}: lines over {args.width}: {before} -> {after}; cells changed: {changed}; '
              f'characters {chars} -> {sum(len(source(c)) for c in nb["cells"])}')
        for k, l, why in problems: print(f'  cell {k}: {len(l)} characters: {why}: {l.strip()[:60]}')
    return 1 if found else 0


if __name__ == '__main__': sys.exit(main())
