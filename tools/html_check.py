"""Check the rendered docs site (`_docs/`, written by `nbdev_docs`) for what a reader trips over. Fast, no browser.

    python tools/html_check.py [_docs]      # prints each problem (page: element: what); exit 1 if there is any

What it checks, per page:
- page:      every lesson (nbs/*.ipynb not starting with `_` or `.`) has its page (nbdev names it without the number).
- figure:    an `<img>` with a fixed pixel `width` wider than the content column and no `img-fluid` class (Quarto does
             that when a PNG carries a retina width): the figure is cut off on the right.
- path:      a path of the build machine in the page's text (the repo's absolute path, /tmp/, /root/, /home/, /work/,
             /Users/, site-packages, .venv/lib).
- signature: markdown link syntax (`[`X`](https://…)`) shown as text inside a code block: a parameter comment with
             backticks in a signature.
- private:   an API heading naming a private function (`_x`, `Class._x`), e.g. a method patched on under its
             function's name.
- table:     a markdown table printed as raw text (`| a | b |` lines) in a cell output.
- width:     an output line wider than the column (measured in characters of the output font; see `column()`).
- code:      a line of a code cell wider than the column (the code font in a code block; see `code_column()`). Where
             the site wraps long code lines (Quarto's `code-overflow: wrap`), a line may pass the column only in a
             comment or a string (prose: a docstring, a message); code beyond the column fails (`prose_overflow()`).
- mdcode:    a line of a code block written in markdown (a command, a log excerpt) wider than the column.
- signature: also a line of an API signature (`def f(...)` block) wider than the column (unless the site wraps code:
             then the browser breaks a parameter list between parameters), a parameter shown as `x:NoneType=None` (an
             unannotated parameter with default None: annotate it, e.g. `x:int|None=None`), or a default shown as an
             object's address (`<...Strategy object at 0x7f...>`: default to None and make the object inside).
- table:     also a table whose narrowest layout is wider than the column: the longest unbreakable word of each
             column side by side (see `table_min_width()`), unless it sits in a container that scrolls on purpose.
- link:      a link to a page of the site that does not exist, or to an anchor (`page.html#x`) the page lacks.
- readme:    README.md differs from git's committed version (`nbdev_docs` rewrote it).
"""
import argparse, re, subprocess, sys, unicodedata
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

VOID = {'area', 'base', 'br', 'col', 'embed', 'hr', 'img', 'input', 'link', 'meta', 'source', 'track', 'wbr'}
PATHS = [r'/tmp/', r'/root/', r'/home/', r'/work/', r'/Users/', r'site-packages', r'\.venv/lib']
MD_LINK = re.compile(r'\[`?[^\]\n]{1,80}`?\]\(https?://')
PRIVATE = re.compile(r'(^|\.)_(?!_)\w*$')            # _x or Class._x, but not a dunder like __call__
ADDRESS = re.compile(r'[^,(]*<[\w.]+ object at 0x[0-9a-f]+>')   # a default that prints as its address
TABLE_ROW = re.compile(r'^\s*\|.*\|\s*$')
TABLE_RULE = re.compile(r'^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$')
# The widest advance, in em, of the monospace fonts in Bootstrap's stack (SFMono 0.6, Menlo 0.602, Consolas 0.55,
# Liberation Mono 0.6, Courier New 0.6): a line that fits in Menlo fits in all of them.
MONO_ADVANCE_EM = 0.602


def page_name(nb: Path) -> str:
    "The HTML page nbdev writes for notebook `nb` (nbdev.doclinks._nbpath2html: the number prefix dropped)."
    return re.sub(r'^\d+[a-zA-Z0-9]*_', '', nb.name.lower()).rsplit('.', 1)[0] + '.html'


class Page(HTMLParser):
    "One pass over a page, collecting the elements the checks look at, each with where it is."
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.imgs, self.headings, self.pres, self.texts = [], [], [], [], []
        self.heading, self.css, self.body_classes, self._buf = '', [], [], None
        self.links, self.ids, self.tables, self._table, self._cellbuf = [], set(), [], None, None
        self.wraps = []   # per pre: does the site wrap its long lines (Quarto's code-overflow: wrap)?

    @property
    def cell(self):
        "The id of the notebook cell we are in ('' outside cells)."
        return next((i or '?' for _, cls, i in reversed(self.stack) if 'cell' in cls), '')

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        cls = (a.get('class') or '').split()
        if tag == 'img': self.imgs.append((a, self.cell, self.heading))
        if tag == 'link' and a.get('rel') == 'stylesheet' and a.get('href'): self.css.append(a['href'])
        if tag == 'body': self.body_classes = cls
        if a.get('id'): self.ids.add(a['id'])
        if tag == 'a' and a.get('href'): self.links.append((a['href'], self.cell, self.heading))
        if tag == 'table':
            self._table = {'rows': [], 'cell': self.cell, 'heading': self.heading,
                           'classes': {c for _, cs, _ in self.stack for c in cs}}
        if tag == 'tr' and self._table is not None: self._table['rows'].append([])
        if tag in ('td', 'th') and self._table is not None: self._cellbuf = []
        if tag == 'code' and self._cellbuf is not None: self._cellbuf.append('\x00')
        if tag in VOID: return
        self.stack.append((tag, cls, a.get('id')))
        if tag in ('h1', 'h2', 'h3', 'h4', 'h5', 'h6') or tag == 'pre': self._buf = []
        if tag == 'pre': self._pre_wraps = 'code-overflow-wrap' in cls

    def handle_endtag(self, tag):
        if tag == 'code' and self._cellbuf is not None: self._cellbuf.append('\x01')
        if tag in ('td', 'th') and self._cellbuf is not None and self._table and self._table['rows']:
            self._table['rows'][-1].append(''.join(self._cellbuf)); self._cellbuf = None
        if tag == 'table' and self._table is not None: self.tables.append(self._table); self._table = None
        if tag in VOID or not any(t == tag for t, _, _ in self.stack): return
        while self.stack:
            t, cls, _ = self.stack.pop()
            if t == tag: break
        if tag in ('h1', 'h2', 'h3', 'h4', 'h5', 'h6') and self._buf is not None:
            self.heading = ''.join(self._buf).strip(); self.headings.append((tag, self.heading)); self._buf = None
        elif tag == 'pre' and self._buf is not None:
            output = any(c.startswith('cell-output') for _, cs, _ in self.stack for c in cs)
            self.pres.append((''.join(self._buf), output, self.cell, self.heading)); self._buf = None
            self.wraps.append(getattr(self, '_pre_wraps', False))

    def handle_data(self, data):
        if any(t in ('script', 'style', 'head') for t, _, _ in self.stack): return
        if self._buf is not None: self._buf.append(data)
        if self._cellbuf is not None: self._cellbuf.append(data)
        self.texts.append((data, self.cell, self.heading))


def _where(cell, heading): return f"cell {cell}" if cell else f"after heading '{heading}'" if heading else 'top'


_CSS = {}
def site_css(docs: Path, page: Page) -> str:
    "The stylesheets `page` links, as one text; read once per site (every page links the same few)."
    key = (docs, tuple(page.css))
    if key not in _CSS:
        _CSS[key] = '\n'.join((docs/h).read_text(errors='replace') for h in page.css if (docs/h).exists())
    return _CSS[key]


def column(docs: Path, page: Page):
    """The content column in px, and the characters of an output line that fit in it, from the site's CSS.

    Quarto's grid (`body.floating .page-columns`) gives the body content `minmax(500px, calc(800px - 3em))`: at most
    800px - 3 root em (17px in cosmo) = 749px, reached at any window wider than about 1300px. An output `<pre>` sits
    in it with the left margin and border of nbs/styles.css (0.8rem + 2px), in Bootstrap's `pre` font (0.875em of
    17px = 14.875px), whose widest monospace advance is 0.602em: 733.4px / 8.95px = 81 characters."""
    css = site_css(docs, page)
    m = re.search(r'--bs-root-font-size:\s*([\d.]+)px', css)
    if not m: raise SystemExit("html_check: no --bs-root-font-size in the site's CSS: update tools/html_check.py")
    rem = float(m.group(1))
    widths = []
    for cls in page.body_classes or ['floating']:
        for rule in re.findall(r'body\.' + re.escape(cls) + r' \.page-columns\{([^}]*)\}', css):
            g = re.search(r'\[body-content-start\]\s*minmax\([^,]+,\s*calc\(([\d.]+)px\s*-\s*([\d.]+)em\)\)', rule)
            if g: widths.append(float(g.group(1)) - float(g.group(2)) * rem)
    if not widths: raise SystemExit("html_check: no body-content column in the site's CSS: update tools/html_check.py")
    col = max(widths)
    m = re.search(r'\.cell-output > pre[^{]*\{[^}]*margin-left:\s*([\d.]+)rem', css)
    margin = (float(m.group(1)) * rem if m else 0) + 2  # + the 2px left border of styles.css
    m = re.search(r'pre\{font-family:[^}]*font-size:([\d.]+)em', css)
    font = float(m.group(1)) * rem if m else 0.875 * rem
    return col, int((col - margin) / (font * MONO_ADVANCE_EM))


def code_column(col: float, rem: float = 17.0) -> int:
    """The characters of a code line that fit in the column: a code block (`div.sourceCode`, padding 0.2rem each side)
    holds a `pre.sourceCode` (padding 0.4em each side) in the code font, 0.875em: (749 - 6.8 - 11.9) / 8.95 = 81."""
    font = 0.875 * rem
    return int((col - 2 * 0.2 * rem - 2 * 0.4 * font) / (font * MONO_ADVANCE_EM))


# Advances for a table's narrowest layout: body text (Source Sans Pro in cosmo, 17px) averages about 0.5em a character
# (we take 0.52em, 8.8px, to allow capitals); code spans are 0.875em monospace (8.95px). Each cell adds 0.5rem of
# padding on both sides (Bootstrap's .table).
TEXT_PX, CODE_PX, CELL_PAD_PX = 8.8, 8.95, 17.0


def prose_overflow(line:str, limit:int) -> bool:
    """Is what passes column `limit` of a code line prose — a comment or the text of a string (a docstring, a
    parameter's comment, a message)? Such a line may wrap on the page (code-overflow: wrap); code itself may not."""
    quote, i = None, 0
    while i < min(len(line), limit):
        ch = line[i]
        if quote:
            if ch == '\\': i += 1
            elif line.startswith(quote, i): i += len(quote) - 1; quote = None
        elif ch == '#': return True
        elif ch in '\'"': quote = ch * 3 if line.startswith(ch * 3, i) else ch; i += len(quote) - 1
        i += 1
    return quote is not None


def table_min_width(rows) -> float:
    "The narrowest a table can be laid out: per column, its longest unbreakable word (split at spaces and hyphens)."
    widths = {}
    for row in rows:
        for j, cell in enumerate(row):
            best = 0.0
            for part in re.split(r'(\x00[^\x01]*\x01)', cell):
                code = part.startswith('\x00')
                for w in re.split(r'[\s\-]+', part.strip('\x00\x01')):
                    best = max(best, len(w) * (CODE_PX if code else TEXT_PX))
            widths[j] = max(widths.get(j, 0.0), best + CELL_PAD_PX)
    return sum(widths.values())


def display_width(line: str) -> int:
    line = line.expandtabs(8)
    return sum(2 if unicodedata.east_asian_width(ch) in 'WF' else 0 if unicodedata.combining(ch) else 1 for ch in line)


def code_wraps(docs: Path, page: Page) -> bool:
    "Does the site wrap long code lines (Quarto's `code-overflow: wrap`: `pre > code.sourceCode {white-space: pre-wrap}`)?"
    css = site_css(docs, page)
    return re.search(r'pre\s*>\s*code\.sourceCode\s*\{[^}]*white-space:\s*pre-wrap', css) is not None


def scrolling_classes(docs: Path, page: Page) -> set:
    "The classes the site's CSS lets scroll sideways (`overflow-x: auto|scroll`): a wide table inside one scrolls on purpose."
    out = set()
    for sel, body in re.findall(r'([^{}]+)\{([^}]*)\}', site_css(docs, page)):
        if re.search(r'overflow-x:\s*(auto|scroll)', body):
            out |= {m for part in sel.split(',') for m in re.findall(r'\.([\w-]+)\s*$', part.strip())}
    return out


_IDS = {}
def _ids(page: Path) -> set:
    "The element ids of a page (cached): the anchors a link may point to."
    if page not in _IDS: _IDS[page] = set(re.findall(r'\bid="([^"]+)"', page.read_text(errors='replace')))
    return _IDS[page]


def check_page(f: Path, docs: Path, root: Path, limits=None):
    "Problems on one page: [(kind, message)]."
    p = Page(); p.feed(f.read_text(errors='replace')); p.close()
    col, chars = limits or column(docs, p)
    name, out = f.name, []
    for a, cell, heading in p.imgs:
        w = a.get('width', '')
        if w.isdigit() and int(w) > col and 'img-fluid' not in (a.get('class') or '').split():
            out.append(('figure', f"{name}: {_where(cell, heading)}: <img src={a.get('src')}> is {w}px wide, no img-fluid; the column is {col:.0f}px"))
    pats = [re.escape(str(root))] + PATHS
    path_re = re.compile('|'.join(pats))
    seen = set()
    for text, cell, heading in p.texts:
        for m in path_re.finditer(text):
            s = text[max(0, m.start() - 30):m.end() + 40].replace('\n', ' ')
            if (cell, heading, m.group()) in seen: continue
            seen.add((cell, heading, m.group()))
            out.append(('path', f"{name}: {_where(cell, heading)}: a build-machine path {m.group()!r}: …{s}…"))
    code_chars = code_column(col)
    site_wraps = code_wraps(docs, p)
    for (text, output, cell, heading), wraps in zip(p.pres, p.wraps):
        wraps = wraps or site_wraps
        if not output:
            lines = text.splitlines()
            sig = not cell and lines and lines[0].startswith(('def ', 'class ', 'async def '))
            # where the site wraps code, prose in code may pass the column, and so may a signature's parameter
            # list (nbdev joins parameters without comments onto one line; the browser breaks it between them)
            wide = [l for l in lines if display_width(l) > code_chars
                    and not (wraps and (sig or prose_overflow(l, code_chars)))]
            kind = 'signature' if sig else 'code' if cell else 'mdcode'
            what = 'signature' if sig else 'code cell' if cell else 'markdown code block'
            if wide:
                w = max(wide, key=display_width)
                out.append((kind, f"{name}: {_where(cell, heading)}: {len(wide)} {what} line(s) wider than {code_chars} characters, the widest {display_width(w)}: {w.strip()[:60]}…"))
            addr = ADDRESS.search(text) if sig else None
            if addr:
                out.append(('signature', f"{name}: signature under '{heading}': a default shown as an object's "
                                         f"address: {addr.group().strip()[:70]}"))
            if sig and 'NoneType' in text:
                out.append(('signature', f"{name}: signature under '{heading}': {text.count('NoneType')} parameter(s) shown as NoneType: {next(l for l in lines if 'NoneType' in l).strip()[:70]}"))
        if not output and not cell and MD_LINK.search(text):
            m = MD_LINK.search(text); line = next(l for l in text.splitlines() if m.group() in l).strip()
            out.append(('signature', f"{name}: signature under '{heading}': markdown link text: {line[:110]}"))
        elif MD_LINK.search(text):
            out.append(('signature', f"{name}: {_where(cell, heading)}: markdown link text in a code block: {MD_LINK.search(text).group()}"))
        if not output: continue
        lines = text.splitlines()
        rows = [l for l in lines if TABLE_ROW.match(l)]
        if len(rows) >= 2 and any(TABLE_RULE.match(l) for l in lines):
            out.append(('table', f"{name}: {_where(cell, heading)}: a markdown table printed as text ({len(rows)} rows): {rows[0].strip()[:80]}"))
        wide = [l for l in lines if display_width(l) > chars]
        if wide:
            w = max(wide, key=display_width)
            out.append(('width', f"{name}: {_where(cell, heading)}: {len(wide)} output line(s) wider than {chars} characters, the widest {display_width(w)}: {w.strip()[:60]}…"))
    scrolls = scrolling_classes(docs, p)
    for t in p.tables:
        w = table_min_width(t['rows'])
        if w > col and not t['classes'] & scrolls:
            first = ' | '.join(c.replace('\x00', '').replace('\x01', '') for c in t['rows'][0])[:60] if t['rows'] else ''
            out.append(('table', f"{name}: {_where(t['cell'], t['heading'])}: a table at least {w:.0f}px wide in a {col:.0f}px column: {first}"))
    for href, cell, heading in p.links:
        m = re.match(r'^([\w.\-]*\.html)?(?:#(.+))?$', href)
        if not m or href.startswith(('http', 'mailto:')) or not (m.group(1) or m.group(2)): continue
        target = docs/m.group(1) if m.group(1) else f
        if not target.exists(): out.append(('link', f"{name}: {_where(cell, heading)}: a link to {href}: no page {target.name}")); continue
        if m.group(2) and m.group(2) not in _ids(target):
            out.append(('link', f"{name}: {_where(cell, heading)}: a link to {href}: {target.name} has no anchor #{m.group(2)}"))
    for tag, text in p.headings:
        if tag in ('h2', 'h3', 'h4') and PRIVATE.search(text.split('(')[0].strip()):
            out.append(('private', f"{name}: API heading <{tag}> names a private function: {text}"))
    return out, (col, chars)


def check(docs: Path, nbs: Path = None, root: Path = None, readme=True):
    "Every problem of the site in `docs`: [(kind, message)], and the column (px, characters) it measured against."
    root = (root or docs.resolve().parent).resolve()
    nbs = nbs or root/'nbs'
    problems, limits = [], None
    for nb in sorted(nbs.glob('*.ipynb')):
        if nb.name.startswith(('_', '.')): continue
        if not (docs/page_name(nb)).exists(): problems.append(('page', f"{nb.name}: no page {page_name(nb)} in {docs.name}/"))
    for f in sorted(docs.glob('*.html')):
        found, limits = check_page(f, docs, root, limits)
        problems += found
    if readme and (root/'.git').exists() and (root/'README.md').exists():
        r = subprocess.run(['git', 'diff', '--stat', '--', 'README.md'], cwd=root, capture_output=True, text=True)
        if r.stdout.strip(): problems.append(('readme', f"README.md: changed from the committed version (nbdev_docs rewrote it?): {r.stdout.strip().splitlines()[-1].strip()}"))
    return problems, limits


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('docs', nargs='?', default='_docs', help='the rendered site (default: _docs)')
    ap.add_argument('--nbs', default=None, help="the notebooks (default: nbs/ beside the site)")
    ap.add_argument('--no-readme', action='store_true', help="don't compare README.md with git")
    args = ap.parse_args()
    docs = Path(args.docs)
    if not (docs/'index.html').exists(): sys.exit(f"html_check: {docs}/index.html not found: render the site first (nbdev_docs)")
    problems, limits = check(docs, Path(args.nbs) if args.nbs else None, readme=not args.no_readme)
    for _, msg in problems: print(msg)
    pages = len(list(docs.glob('*.html')))
    if limits: print(f"column {limits[0]:.0f}px: output lines up to {limits[1]} characters", file=sys.stderr)
    if problems:
        print(f"html_check: {len(problems)} problems on {pages} pages: " + ', '.join(f"{k} {n}" for k, n in Counter(k for k, _ in problems).most_common()))
        sys.exit(1)
    print(f"html_check passed: {pages} pages")
