"""Quarto post-render hook (nbs/_quarto.yml): finishes README.md when `nbdev_readme` renders it from nbs/index.ipynb.

`nbdev_readme` (which `nbdev_docs` and `nbdev_prepare` also run) renders the index notebook to GitHub markdown with
Quarto; this hook runs inside that render, so README.md stays exactly what nbdev writes. Quarto's gfm output loses
two things a reader of the README on GitHub needs, and this puts them back:
- the `> summary` line under the title (Quarto keeps it only as front-matter `description`, which gfm drops);
- links to lessons (and the results page): `[Data](02_data.ipynb)` works in the notebook and on the site (both sit beside the lessons in
  nbs/), but README.md sits one folder up, so it gets `nbs/02_data.ipynb`.
Renders of other files (the HTML site) are left alone. Standard library only: Quarto runs it with the first python on
PATH."""
import json, os, re
from configparser import ConfigParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def summary(nb: Path) -> str:
    "The `> summary` line of the notebook's first markdown cell ('' if none)."
    cells = json.loads(nb.read_text())['cells']
    md = next((''.join(c['source']) for c in cells if c['cell_type'] == 'markdown'), '')
    m = re.search(r'^> (.+)$', md, re.M)
    return m.group(1).strip() if m else ''


def finish(text: str, summary: str, nbs: str = 'nbs') -> str:
    "README text with the summary under the title and lesson links relative to the repository root. Idempotent."
    text = re.sub(r'\]\(((?:\d\d\w*|results)\.ipynb(#[^)]*)?)\)', rf']({nbs}/\1)', text)
    if summary and f'\n> {summary}\n' not in text:
        text = re.sub(r'\A(# [^\n]*\n)\n*', lambda m: f"{m.group(1)}\n> {summary}\n\n", text, count=1)
    return text


if __name__ == '__main__':
    outs = [Path(p) for p in os.environ.get('QUARTO_PROJECT_OUTPUT_FILES', '').splitlines() if p.strip()]
    readmes = [p for p in outs if p.name == 'README.md' and p.exists()]
    if readmes:
        cfg = ConfigParser(); cfg.read(ROOT/'settings.ini')
        d = cfg['DEFAULT']
        nbs = d.get('nbs_path', 'nbs')
        s = summary(ROOT/nbs/d.get('readme_nb', 'index.ipynb'))
        for p in readmes: p.write_text(finish(p.read_text(), s, nbs))
