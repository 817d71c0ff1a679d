"""Write README.md from nbs/index.ipynb (markdown cells as they are, code cells as fenced blocks, text outputs kept).

nbdev_readme does this through quarto; this script does the same without it, so README.md can be checked in CI:
`python tools/readme.py` writes it, `python tools/readme.py --check` exits 1 when README.md is out of date."""
import json, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTE = "<!-- Generated from nbs/index.ipynb by tools/readme.py: edit the notebook, not this file. -->\n\n"

def _src(cell): return ''.join(cell['source'])

def render(nb_path=ROOT/'nbs'/'index.ipynb'):
    "The README text for the notebook at `nb_path`."
    nb = json.loads(Path(nb_path).read_text())
    parts = []
    for cell in nb['cells']:
        src = _src(cell).strip()
        if cell['cell_type'] == 'markdown':
            # links between lessons are relative to nbs/ in the notebook; the README sits one folder up
            if src: parts.append(re.sub(r'\]\((\d\d_\w+\.ipynb)\)', r'](nbs/\1)', src))
            continue
        lines = [l for l in src.splitlines() if not l.startswith('#|')]
        if any(l.startswith('#| hide') for l in src.splitlines()) or not any(l.strip() for l in lines): continue
        parts.append('```python\n' + '\n'.join(lines).strip() + '\n```')
        for out in cell.get('outputs', []):
            text = out.get('text') or out.get('data', {}).get('text/markdown') or out.get('data', {}).get('text/plain')
            if not text: continue
            text = ''.join(text).rstrip()
            md = 'text/markdown' in out.get('data', {})
            parts.append(text if md else '    ' + text.replace('\n', '\n    '))
    return NOTE + '\n\n'.join(parts) + '\n'

if __name__ == '__main__':
    text, readme = render(), ROOT/'README.md'
    if '--check' in sys.argv:
        if readme.read_text() != text: sys.exit("README.md is out of date with nbs/index.ipynb: run python tools/readme.py")
        print("README.md matches nbs/index.ipynb")
    else:
        readme.write_text(text)
        print(f"wrote {readme}")
