"tools/wrap_code.py: long code lines wrapped to the column, nothing else changed, the syntax tree the same."
import ast, sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO/'tools'))
import wrap_code as W

LONG = ("def f(x):\n"
        "    if x: return some_function(x, another_argument=1, a_third_argument=2, a_fourth_argument=3, more=4)\n"
        "    y = 1  # a short line stays as it is\n"
        "    return y\n")
DEEP = ("test_eq([(len(c), last) for c, last in chunk_pieces([('txt',\n"
        "                                                      str(src/'c.txt'))] * 5,\n"
        "                                                    chunk_bytes=30)], [(2, False)])\n")
DOCMENT = ("def g(a:int=1, # " + "a parameter's comment that is far too long to fit in the column " * 2 + "\n"
           "     ):\n    return a\n")

def test_long_line_wrapped_same_tree():
    new, problems = W.fix_cell(LONG, 81)
    assert max(map(len, new.split('\n'))) <= 81 and problems == []
    assert ast.dump(ast.parse(new)) == ast.dump(ast.parse(LONG))
    assert '    y = 1  # a short line stays as it is' in new.split('\n')

def test_deep_alignment_tidied():
    new, _ = W.fix_cell(DEEP, 81)
    assert ast.dump(ast.parse(new)) == ast.dump(ast.parse(DEEP))
    assert max(len(l) - len(l.lstrip()) for l in new.split('\n')) < 20, new

def test_docment_left_and_reported():
    new, problems = W.fix_cell(DOCMENT, 81)
    assert new == DOCMENT and problems and 'docment' in problems[0][1]

def test_check_mode(tmp_path):
    import json
    nb = {'cells': [{'cell_type': 'code', 'source': LONG, 'metadata': {}, 'outputs': [], 'execution_count': None}],
          'metadata': {}, 'nbformat': 4, 'nbformat_minor': 5}
    p = tmp_path/'x.ipynb'; p.write_text(json.dumps(nb))
    assert W.main(['--check', str(p)]) == 1 and json.loads(p.read_text()) == nb   # nothing written
    assert W.main([str(p)]) == 0 and W.main(['--check', str(p)]) == 0
