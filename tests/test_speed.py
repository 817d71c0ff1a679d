"""The speed scripts' CPU paths: the GPU benchmark's ladder and experiments (bench/gpu.sh --smoke), the CPU benchmark against
the measured peak and transformers (bench/model_vs_hf.py --smoke), and the compiled chunked loss against the eager one."""
import json

import pytest
import torch

from conftest import run_cmd, PY, REPO
from gpt2_nb.model import GPT, GPTConfig
from gpt2_nb.speed import linear_cross_entropy
from gpt2_nb.core import seed_everything


def test_gpu_script_dry_path(tmp_path):
    "bench/gpu.sh --smoke on the CPU: the lecture's ladder (7 rungs, each one change), the experiment matrix and a CLI run."
    out = tmp_path/'gpu.json'
    r = run_cmd('bash', REPO/'bench'/'gpu.sh', '--smoke', '--out', out, cwd=REPO, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    rep = json.loads(out.read_text())
    ladder = rep['ladder']
    assert [x['step'] for x in ladder] == ['fp32', '+ TF32', '+ bf16 autocast', '+ torch.compile', '+ flash attention',
                                           '+ vocab 50304', '+ fused AdamW']
    assert all('tokens_per_sec' in x and 'error' not in x for x in ladder), ladder
    first, last = ladder[0], ladder[-1]
    assert (first['precision'], first['attention'], first['vocab'], first['fused_adamw']) == ('fp32', 'naive', 50257, False)
    assert (last['precision'], last['attention'], last['vocab'], last['fused_adamw']) == ('bf16', 'flash', 50304, True)
    assert ladder[3]['compile'] is True and first['speedup'] == 1.0
    assert sum('tokens_per_sec' in x for x in rep['results']) >= 7  # every eager combination and one compiled one
    assert [s['step'] for s in rep['cli_check']['steps']] == [1, 2]
    # then the 124M comparison (here its small smoke model) and the three losses, each loss path trained and checked
    for mode in ('ours plain flash', 'ours chunked flash', 'ours fused flash'): assert mode in r.stdout, r.stdout[-3000:]
    assert 'against plain, fp32: chunked loss' in r.stdout and '; fused loss' in r.stdout, r.stdout[-3000:]


def test_cpu_benchmark_smoke(tmp_path):
    "bench/model_vs_hf.py --smoke: peaks, every mode with tokens/s and MFU, the default marked, a ratio and a ceiling."
    pytest.importorskip('transformers')
    out = tmp_path/'cpu.json'
    r = run_cmd(PY, REPO/'bench'/'model_vs_hf.py', '--smoke', '--json', out, cwd=REPO, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    rep = json.loads(out.read_text())
    assert set(rep['peaks_tflops']) == {'fp32', 'tf32', 'bf16'} and all(v > 0 for v in rep['peaks_tflops'].values())
    assert sum(m['default'] for m in rep['modes'].values()) == 1 and rep['modes'][rep['default']]['default']
    assert all(m['tokens_per_sec'] > 0 and 0 < m['mfu'] < 1 for m in rep['modes'].values())
    assert any(n.startswith('hf') for n in rep['modes']) and rep['ratio_default'] > 0
    assert 0 < rep['ceiling']['floor_ms'] <= rep['modes'][rep['default']]['ms'] + 1e-6
    assert 'FLOPs per token = 6·(12·L·C² + Vp·C) + 12·L·C·T' in r.stdout and 'ceiling (Amdahl)' in r.stdout


@pytest.mark.parametrize('autocast', [False, True])
def test_compiled_chunked_loss_equals_eager(autocast):
    "Under torch.compile (inductor) the chunked loss runs its fused form; loss and every gradient match the eager path."
    seed_everything(0)
    m = GPT(GPTConfig(block_size=32, vocab_size=1000, n_layer=2, n_head=2, n_embd=32))  # padded to 1024 columns
    idx, tg = torch.randint(0, 1000, (2, 4, 32)).unbind(0)
    tg[0, :5] = -100
    def run(model):
        m.zero_grad()
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=autocast): _, loss = model(idx, tg, loss_fn=linear_cross_entropy)
        loss.backward()
        return loss.item(), {n: p.grad.clone() for n, p in m.named_parameters()}
    (l0, g0), (l1, g1) = run(m), run(torch.compile(m))
    tol = 2e-2 if autocast else 1e-5
    assert abs(l1 - l0) <= tol * abs(l0)
    for n in g0: assert (g1[n] - g0[n]).norm() <= tol * g0[n].norm() + 1e-8, n
    assert m.lm_head.weight.grad[1000:].abs().max().item() == 0.0  # no gradient into the padding rows


def test_gpt2_124m_benchmark_smoke(tmp_path):
    "bench/gpt2_124m.py --smoke: each of our loss paths and attentions compiled, transformers, ratios; a bad --nanogpt refused."
    pytest.importorskip('transformers')
    out = tmp_path/'g.json'
    r = run_cmd(PY, REPO/'bench'/'gpt2_124m.py', '--smoke', '--json', out, cwd=REPO, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    rep = json.loads(out.read_text())
    assert set(rep['modes']) == {f'ours {loss} {attn}' for loss in ('plain', 'chunked', 'fused')
                                 for attn in ('flash', 'naive')} | {'transformers sdpa'}, rep['modes']
    assert all(m['tokens_per_sec'] > 0 and m['ms_min'] <= m['ms'] <= m['ms_max'] for m in rep['modes'].values())
    assert 'x transformers' in r.stdout and 'nanoGPT left out' in r.stdout
    bad = run_cmd(PY, REPO/'bench'/'gpt2_124m.py', '--smoke', '--nanogpt', tmp_path, cwd=REPO, timeout=120)
    assert bad.returncode != 0 and 'no model.py' in bad.stderr and 'Traceback' not in bad.stderr
