"Scaling: the memory model's GPU script (its CPU dry path)."
import json

from conftest import run_cmd, PY, REPO


def test_gpu_memory_script_smoke(tmp_path):
    "bench/gpu_memory.py --smoke runs end to end on the CPU and writes estimate and measurement side by side."
    out = tmp_path/'mem.json'
    r = run_cmd(PY, REPO/'bench'/'gpu_memory.py', '--smoke', '--out', out, cwd=REPO, env={'PYTHONPATH': str(REPO)}, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    rep = json.loads(out.read_text())
    assert rep['device_type'] == 'cpu' and len(rep['results']) == 2
    for row in rep['results']:
        assert 'error' not in row, row
        assert 0.75 <= row['step_ratio'] <= 1.25 and 0.75 <= row['eval_ratio'] <= 1.25, row
