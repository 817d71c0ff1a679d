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
- readme:    README.md differs from git's committed version (`nbdev_docs` rewrote it).
"""
import argparse, math, re, subprocess, sys, unicodedata
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

VOID = {'area', 'base', 'br', 'col', 'embed', 'hr', 'img', 'input', 'link', 'meta', 'source', 'track', 'wbr'}
PATHS = [r'/tmp/', r'/root/', r'/home/', r'/work/', r'/Users/', r'site-packages', r'\.venv/lib']
MD_LINK = re.compile(r'\[`?[^\]\n]{1,80}`?\]\(https?://')
PRIVATE = re.compile(r'(^|\.)_(?!_)\w*$')            # _x or Class._x, but not a dunder like __call__
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
        if tag in VOID: return
        self.stack.append((tag, cls, a.get('id')))
        if tag in ('h1', 'h2', 'h3', 'h4', 'h5', 'h6') or tag == 'pre': self._buf = []

    def handle_endtag(self, tag):
        if tag in VOID or not any(t == tag for t, _, _ in self.stack): return
        while self.stack:
            t, cls, _ = self.stack.pop()
            if t == tag: break
        if tag in ('h1', 'h2', 'h3', 'h4', 'h5', 'h6') and self._buf is not None:
            self.heading = ''.join(self._buf).strip(); self.headings.append((tag, self.heading)); self._buf = None
        elif tag == 'pre' and self._buf is not None:
            output = any(c.startswith('cell-output') for _, cs, _ in self.stack for c in cs)
            self.pres.append((''.join(self._buf), output, self.cell, self.heading)); self._buf = None

    def handle_data(self, data):
        if any(t in ('script', 'style', 'head') for t, _, _ in self.stack): return
        if self._buf is not None: self._buf.append(data)
        self.texts.append((data, self.cell, self.heading))


def _where(cell, heading): return f"cell {cell}" if cell else f"after heading '{heading}'" if heading else 'top'


def column(docs: Path, page: Page):
    """The content column in px, and the characters of an output line that fit in it, from the site's CSS.

    Quarto's grid (`body.floating .page-columns`) gives the body content `minmax(500px, calc(800px - 3em))`: at most
    800px - 3 root em (17px in cosmo) = 749px, reached at any window wider than about 1300px. An output `<pre>` sits
    in it with the left margin and border of nbs/styles.css (0.8rem + 2px), in Bootstrap's `pre` font (0.875em of
    17px = 14.875px), whose widest monospace advance is 0.602em: 733.4px / 8.95px = 81 characters."""
    css = '\n'.join((docs/h).read_text(errors='replace') for h in page.css if (docs/h).exists())
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


def display_width(line: str) -> int:
    line = line.expandtabs(8)
    return sum(2 if unicodedata.east_asian_width(ch) in 'WF' else 0 if unicodedata.combining(ch) else 1 for ch in line)


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
    for text, output, cell, heading in p.pres:
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
