"tools/html_check.py on small made-up sites: each defect it exists for is found, and a clean page passes."
import subprocess, sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO/'tools'))
import html_check

# the few rules of Quarto's cosmo CSS that the checker reads (copied from a rendered site)
CSS = (":root{--bs-root-font-size: 17px;--bs-body-font-size:1rem}"
       "pre{font-family:SFMono-Regular,Menlo,monospace;font-size:0.875em;font-weight:400}"
       "body.floating .page-columns{display:grid;grid-template-columns:[screen-start] 1.5em [body-content-start] "
       "minmax(500px, calc(800px - 3em)) [body-content-end] 1.5em [screen-end]}\n"
       ".cell-output > pre, .cell-output-stdout > pre {\n  margin-left: 0.8rem;\n}\n"
       ".cell-output-display {\n  overflow-x: auto;\n}\n")

def page(body):
    return ('<html><head><link href="site_libs/b.css" rel="stylesheet"><link href="styles.css" rel="stylesheet"></head>'
            f'<body class="nav-sidebar floating"><main>{body}</main></body></html>')

def code(src, cid='k1', wrap=False):
    cls = 'sourceCode code-overflow-wrap' if wrap else 'sourceCode'
    return f'<div id="{cid}" class="cell"><div class="sourceCode cell-code"><pre class="{cls}"><code>{src}</code></pre></div></div>'

def table(rows, scroll=False):
    body = ''.join('<tr>' + ''.join(f'<td><code>{c}</code></td>' for c in r) + '</tr>' for r in rows)
    t = f'<table class="table"><tbody>{body}</tbody></table>'
    return f'<div class="cell"><div class="cell-output cell-output-display">{t}</div></div>' if scroll else t

WIDE_ROW = ['tokens_per_second_median'] * 4   # 4 x (24 x 8.95 + 17) = 927 px of unbreakable code

def cell(output, cid='c1'):
    return f'<div id="{cid}" class="cell"><div class="cell-output cell-output-stdout"><pre><code>{output}</code></pre></div></div>'

GOOD = page('<h2 id="loading">Loading</h2><p>See <code>GPT</code>.</p>'
            '<section><h3 class="anchored">GPT.from_hf</h3><div class="sourceCode"><pre><code>def from_hf(\n'
            '    name:str, # a model name\n):</code></pre></div></section>'
            '<section><h4>GPT.__call__</h4></section>'
            + cell('x' * 81 + '\n| not a table') +
            '<div class="cell-output-display"><img src="a.png" width="1200" class="img-fluid figure-img"></div>'
            '<p>python -m venv .venv &amp;&amp; . .venv/bin/activate</p>'
            + code('z' * 81) + code('x = 1  # ' + 'a' * 90, 'k2', wrap=True) + '<div class="sourceCode"><pre><code>' + 'w' * 81 + '</code></pre></div>'
            + table([WIDE_ROW[:3]]) + table([WIDE_ROW], scroll=True)
            + '<p id="here"><a href="index.html#loading">ok</a> <a href="#here">ok</a> <a href="https://x.io/y.html">ok</a></p>')

BAD = {
    'figure': page('<div class="cell-output-display"><img src="a.png" width="1089" height="396" class="figure-img"></div>'),
    'path': page(cell("wrote '/tmp/gpt2_nb_sample_shards'")),
    'signature': page('<h3>tokenize_chunk</h3><div class="sourceCode"><pre><code>def tokenize_chunk(\n'
                      '    chunk:list, # see [`Source.pieces`](https://x.io/d.html#s)\n'
                      '):</code></pre></div>'),
    'private': page('<section><h3 class="anchored" data-anchor-id="from_hf">_from_hf</h3></section>'),
    'table': page(cell('| a | b |\n|---|---|\n| 1 | 2 |')),
    'width': page(cell('y' * 82)),
    'code': page(code('    return ' + 'z' * 72)),
    'code wrapped': page(code('    return ' + 'z' * 72 + '  # a comment', wrap=True)),
    'mdcode': page('<div class="sourceCode"><pre><code>gpt2nb_train ' + 'w' * 70 + '</code></pre></div>'),
    'signature width': page('<h3>f</h3><div class="sourceCode"><pre><code>def f(\n    x:int=1, # ' + 'v' * 70
                            + '\n):</code></pre></div>'),
    'signature NoneType': page('<h3>f</h3><div class="sourceCode"><pre><code>def f(\n    x:NoneType=None, # what x is'
                               '\n):</code></pre></div>'),
    'wide table': page(table([WIDE_ROW])),
    'signature address': page('<h3>f</h3><div class="sourceCode"><pre><code>def f(\n    s:S=&lt;__main__.S object at 0x7f02ea2edc90&gt;, # the strategy'
                              '\n):</code></pre></div>'),
    'link': page('<p><a href="lodaer.html">the loader</a></p>'),
    'anchor': page('<p><a href="index.html#nowhere">the start</a></p>'),
}
KIND = {'signature address': 'signature', 'code wrapped': 'code', 'signature width': 'signature', 'signature NoneType': 'signature', 'wide table': 'table', 'anchor': 'link'}

def site(tmp_path, pages, nbs=('01_data.ipynb',)):
    docs = tmp_path/'_docs'; (docs/'site_libs').mkdir(parents=True)
    (docs/'site_libs'/'b.css').write_text(CSS); (docs/'styles.css').write_text(CSS)
    (tmp_path/'nbs').mkdir()
    for n in nbs: (tmp_path/'nbs'/n).write_text('{}')
    for name, html in pages.items(): (docs/name).write_text(html)
    return docs

def test_column_from_css(tmp_path):
    docs = site(tmp_path, {'index.html': GOOD})
    p = html_check.Page(); p.feed(GOOD)
    col, chars = html_check.column(docs, p)
    assert col == 800 - 3 * 17
    assert chars == 81  # (749 - 0.8*17 - 2) px / (0.875*17*0.602) px

def test_clean_site_passes(tmp_path):
    docs = site(tmp_path, {'index.html': GOOD, 'data.html': GOOD})
    problems, _ = html_check.check(docs, readme=False)
    assert problems == []

@pytest.mark.parametrize('kind', sorted(BAD))
def test_each_defect_found(tmp_path, kind):
    docs = site(tmp_path, {'index.html': GOOD, 'data.html': BAD[kind]})
    problems, _ = html_check.check(docs, readme=False)
    assert [k for k, _ in problems] == [KIND.get(kind, kind)], problems
    assert problems[0][1].startswith('data.html: ')

def test_missing_page(tmp_path):
    docs = site(tmp_path, {'index.html': GOOD}, nbs=('01_data.ipynb', '_scratch.ipynb', 'index.ipynb'))
    problems, _ = html_check.check(docs, readme=False)
    assert problems == [('page', '01_data.ipynb: no page data.html in _docs/')]

def test_repo_path_and_readme(tmp_path):
    docs = site(tmp_path, {'index.html': GOOD, 'data.html': page(f"<p>{tmp_path}/gpt2_nb/assets/x</p>")})
    subprocess.run(['git', 'init', '-q'], cwd=tmp_path, check=True)
    (tmp_path/'README.md').write_text('committed\n')
    subprocess.run(['git', '-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qm', 'x', '--allow-empty'], cwd=tmp_path, check=True)
    subprocess.run(['git', 'add', 'README.md'], cwd=tmp_path, check=True)
    subprocess.run(['git', '-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qm', 'r'], cwd=tmp_path, check=True)
    assert [k for k, _ in html_check.check(docs)[0]] == ['path']
    (tmp_path/'README.md').write_text('rewritten\n')
    assert [k for k, _ in html_check.check(docs)[0]] == ['path', 'readme']
