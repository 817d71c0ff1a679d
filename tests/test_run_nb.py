"tools/run_nb.py on a tiny notebook: outputs recorded at full size, flagged cells skipped unless asked, errors change nothing."
import json, os, subprocess, sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

def code(src, outputs=()):
    return {'cell_type': 'code', 'execution_count': None, 'id': f'c{abs(hash(src)) % 10**8:08d}', 'metadata': {},
            'outputs': list(outputs), 'source': src}

def stream(text): return {'name': 'stdout', 'output_type': 'stream', 'text': [text]}

def notebook(path, cells):
    nb = {'cells': cells, 'metadata': {'kernelspec': {'display_name': 'python3', 'language': 'python', 'name': 'python3'}},
          'nbformat': 4, 'nbformat_minor': 5}
    path.write_text(json.dumps(nb, indent=1) + '\n')
    return path

def run(*args):
    env = {**os.environ, 'IN_TEST': '1'}  # the tool must unset it
    return subprocess.run([sys.executable, str(REPO/'tools'/'run_nb.py'), *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)

def outputs(path):
    return [''.join(''.join(o.get('text', '')) for o in c.get('outputs', [])) for c in json.loads(path.read_text())['cells']]

def test_records_outputs(tmp_path):
    nb = notebook(tmp_path/'t.ipynb', [
        {'cell_type': 'markdown', 'id': 'm0', 'metadata': {}, 'source': '# T\n> t'},
        code("import os\nprint('in_test', bool(os.environ.get('IN_TEST')))", [stream('stale\n')]),
        code("#| slow\nprint('slow ran')", [stream('recorded at full size\n')]),
        code("#| eval: false\nprint('never')"),
        code("#| notest\nprint('notest ran')"),
        code("x = 1", [stream('stale output of a cell that now prints nothing\n')]),
        code("import matplotlib.pyplot as plt\nplt.plot([1, 2]); plt.show()"),
    ])
    r = run(nb)
    assert r.returncode == 0, r.stderr
    assert '3 cells run, 3 skipped' in r.stdout
    out = outputs(nb)
    assert out[1] == 'in_test False\n'
    assert out[2] == 'recorded at full size\n'   # skipped: keeps its recorded output
    assert out[3] == '' and out[4] == '' and out[5] == ''
    fig = json.loads(nb.read_text())['cells'][6]['outputs'][0]
    assert 'image/png' in fig['data'] and not fig.get('metadata', {}).get('image/png')  # plain PNG: no retina width
    assert json.loads(nb.read_text())['cells'][1]['execution_count'] is None  # nbdev_clean ran

    r = run(nb, '--flags', 'slow')
    assert r.returncode == 0, r.stderr
    assert outputs(nb)[2] == 'slow ran\n'

def test_error_leaves_notebook_unchanged(tmp_path):
    good = notebook(tmp_path/'a.ipynb', [code("print('a')")])
    bad = notebook(tmp_path/'b.ipynb', [code("print('b')", [stream('old\n')]), code("1/0"), code("print('after')")])
    after = notebook(tmp_path/'c.ipynb', [code("print('c')")])
    before = bad.read_text()
    r = run(good, bad, after)
    assert r.returncode == 1
    assert 'ZeroDivisionError' in r.stderr and 'b.ipynb' in r.stderr
    assert bad.read_text() == before
    assert outputs(good) == ['a\n'] and outputs(after) == ['']  # the one before ran; the one after did not
