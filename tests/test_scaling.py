"""Scaling: FSDP against one process and DDP, FSDP killed and resumed (on the same and on another number of processes),
sharded checkpoints consolidated for gpt2nb_sample and to_hf, activation checkpointing, --batch-size auto under two
memory budgets, two torchrun "nodes" on loopback, and the memory model's GPU script (its CPU dry path).

The multi-process runs are few and small (2 blocks of 64, T=32, 10 steps); the whole file takes a few minutes on 2 cores.
"""
import json, os, shutil, signal, socket, subprocess, time
from pathlib import Path

import pytest
import torch

from conftest import run_cmd, assert_one_line_error, PY, REPO, TINY, make_shards, train_args, records
from gpt2_nb.checkpoint import load_checkpoint, load_model
from gpt2_nb.budget import peak_rss_run
from gpt2_nb.memory import parse_size

# 10 steps of 8 rows of 32 tokens: 1 process x 4 rows x 2 micro-steps, or 2 processes x 2 rows x 2 micro-steps
RUN = ['--total-batch', '256', '--max-steps', '10', '--warmup-steps', '3', '--lr', '3e-3', '--eval-every', '5',
       '--ckpt-every', '5', '--log-every', '1', '--eval-batches', '1', '--sample-tokens', '4']
ENV = {'OMP_NUM_THREADS': '1'}
TORCHRUN = [PY, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2']
SAMPLE = "import sys; from gpt2_nb.generate import sample_cli; sys.argv[0] = 'gpt2nb_sample'; sample_cli()"
CONS = "import sys; from gpt2_nb.checkpoint import consolidate_cli; sys.argv[0] = 'gpt2nb_consolidate'; consolidate_cli()"


def run_ok(*args, env=None, timeout=600):
    r = run_cmd(*args, env={**ENV, **(env or {})}, timeout=timeout)
    assert r.returncode == 0, r.stderr[-3000:]
    return r


def close(a, b, loss_tol, norm_rel):
    "Max abs loss difference of two runs' records (same steps), checked against the tolerances."
    assert [r['step'] for r in a] == [r['step'] for r in b]
    dl = max(abs(x['loss'] - y['loss']) for x, y in zip(a, b))
    dn = max(abs(x['grad_norm'] - y['grad_norm']) / y['grad_norm'] for x, y in zip(a, b))
    assert dl <= loss_tol and dn <= norm_rel, (dl, dn)
    return dl, dn


@pytest.fixture(scope='module')
def one(data, tmp_path_factory):
    out = tmp_path_factory.mktemp('one')
    run_ok(PY, *train_args(data, out, *RUN, '--batch-size', '4'))
    return out

@pytest.fixture(scope='module')
def fsdp(data, tmp_path_factory):
    out = tmp_path_factory.mktemp('fsdp')
    r = run_ok(*TORCHRUN, *train_args(data, out, *RUN, '--batch-size', '2', '--parallel', 'fsdp'))
    assert '2 processes' in r.stdout and 'x 2 micro-steps' in r.stdout
    return out

@pytest.fixture(scope='module')
def ddp(data, tmp_path_factory):
    out = tmp_path_factory.mktemp('ddp')
    run_ok(*TORCHRUN, *train_args(data, out, *RUN, '--batch-size', '2'))
    return out


# --- acceptance 1: FSDP on 2 processes == 1 process == DDP -------------------------------------------------------------

def test_fsdp_equals_one_process_and_ddp(one, fsdp, ddp):
    a, f, d = records(one), records(fsdp), records(ddp)
    print('\nstep | 1 process | FSDP x2 | DDP x2')
    for x, y, z in zip(a, f, d): print(f"{x['step']:4} | {x['loss']:.7f} | {y['loss']:.7f} | {z['loss']:.7f}")
    dl, dn = close(f, a, loss_tol=1e-4, norm_rel=5e-3)  # fp32, summed in another order (and Adam's division by tiny moments)
    print(f"FSDP vs 1 process: max |loss difference| {dl:.2e}, max relative grad-norm difference {dn:.2e}")
    dl, dn = close(f, d, loss_tol=1e-4, norm_rel=5e-3)
    print(f"FSDP vs DDP: max |loss difference| {dl:.2e}, max relative grad-norm difference {dn:.2e}")
    assert f[-1]['loss'] < f[0]['loss'] - 0.5  # it trains
    assert sorted(p.name for p in (fsdp/'ckpt').iterdir()) == ['.metadata', '__0_0.distcp', '__1_0.distcp', 'meta.pt']
    assert not (fsdp/'ckpt.pt').exists()


# --- acceptance 2: SIGKILL mid-step and mid-save, resumed; another number of processes; one file for sample and HF -----

@pytest.fixture(scope='module')
def killed_at_7(data, tmp_path_factory):
    "A 2-process FSDP run killed with SIGKILL in step 7 (after its backward pass, before the update); its checkpoint is step 5."
    out = tmp_path_factory.mktemp('killed')/'run'
    r = run_cmd(*TORCHRUN, *train_args(data, out, *RUN, '--batch-size', '2', '--parallel', 'fsdp'),
                env={**ENV, 'GPT2NB_KILL_AT': 'step:7'}, timeout=600)
    assert r.returncode != 0
    assert [x['step'] for x in records(out)] == [1, 2, 3, 4, 5, 6]  # step 7 never logged
    return out


def test_fsdp_killed_mid_step_resumes_exactly(data, fsdp, killed_at_7, tmp_path):
    out = tmp_path/'run'; shutil.copytree(killed_at_7, out)
    r = run_ok(*TORCHRUN, *train_args(data, out, *RUN, '--batch-size', '2', '--parallel', 'fsdp', '--resume'))
    assert f'resuming {out} at step 5' in r.stdout
    assert records(out) == records(fsdp)  # loss for loss, bit for bit
    assert records(out, 'val_loss') == records(fsdp, 'val_loss')
    assert not list(out.glob('.*.tmp'))


def test_fsdp_killed_mid_save_keeps_last_checkpoint(data, fsdp, tmp_path):
    args = train_args(data, tmp_path, *RUN, '--batch-size', '2', '--parallel', 'fsdp')
    r = run_cmd(*TORCHRUN, *args, env={**ENV, 'GPT2NB_KILL_AT': 'save:10'}, timeout=600)
    assert r.returncode != 0
    assert (tmp_path/'.ckpt.10.tmp'/'meta.pt').exists()  # the new checkpoint was written, but never put in place
    assert load_checkpoint(tmp_path)['step'] == 5        # the last good one is whole (and consolidates)
    r = run_ok(*TORCHRUN, *args, '--resume')
    assert f'resuming {tmp_path} at step 5' in r.stdout
    assert records(tmp_path) == records(fsdp) and records(tmp_path, 'val_loss') == records(fsdp, 'val_loss')
    assert not list(tmp_path.glob('.*.tmp'))


def test_fsdp_resumes_on_one_process_and_exports(data, fsdp, killed_at_7, tmp_path):
    "The checkpoint of 2 processes (step 5) resumed by 1 process with twice the rows; consolidated for sampling and to_hf."
    out = tmp_path/'run'; shutil.copytree(killed_at_7, out)
    bad = run_cmd(PY, *train_args(data, out, *RUN, '--batch-size', '2', '--parallel', 'fsdp', '--resume'))
    assert_one_line_error(bad, '--batch-size 4')  # 2 processes x 2 rows: one process must take 4 rows per micro-step
    r = run_ok(PY, *train_args(data, out, *RUN, '--batch-size', '4', '--parallel', 'fsdp', '--resume'))
    assert f'resuming {out} at step 5' in r.stdout
    dl, _ = close(records(out), records(fsdp), loss_tol=1e-4, norm_rel=5e-3)
    print(f"\n2 processes -> 1 process at step 5: max |loss difference| over 10 steps {dl:.2e}")
    # one rank, no FSDP: gpt2nb_sample reads the run folder; consolidate_checkpoint writes one ckpt.pt; to_hf works
    model = load_model(out)
    from gpt2_nb.checkpoint import consolidate_checkpoint
    from gpt2_nb.hf import to_hf
    dst = consolidate_checkpoint(out, out/'single.pt')
    ck = load_checkpoint(dst)
    assert ck['step'] == 10 and ck['world_size'] == 1 and 'lm_head.weight' in ck['model']
    for k, v in load_model(dst).state_dict().items(): assert torch.equal(v, model.state_dict()[k]), k
    hf = to_hf(model).eval()
    x = torch.randint(0, 512, (1, 16))
    with torch.no_grad(): torch.testing.assert_close(hf(x).logits, model(x)[0][..., :model.config.vocab_size], atol=1e-4, rtol=1e-4)
    s1 = run_ok(PY, '-c', SAMPLE, '--ckpt', out, '--prompt', 'The', '--max-new-tokens', '5', '--device', 'cpu')  # the sharded run folder
    assert s1.stdout.startswith('The') and len(s1.stdout) > 3
    r = run_ok(PY, '-c', CONS, '--ckpt', out)
    assert load_checkpoint(out/'ckpt.pt')['step'] == 10 and 'wrote' in r.stdout
    from gpt2_nb.core import GPT2NBError
    with pytest.raises(GPT2NBError, match='no sharded checkpoint'): consolidate_checkpoint(out/'nothing')


def test_newest_checkpoint_wins_after_consolidating(data, killed_at_7, tmp_path):
    "Consolidated at step 5, then trained on with FSDP to step 10: readers take the sharded step 10 and say so."
    out = tmp_path/'run'; shutil.copytree(killed_at_7, out)
    run_ok(PY, '-c', CONS, '--ckpt', out)  # ckpt.pt at step 5
    run_ok(PY, *train_args(data, out, *RUN, '--batch-size', '4', '--parallel', 'fsdp', '--resume'))  # ckpt/ at step 10
    said = []
    assert load_checkpoint(out, say=said.append)['step'] == 10 and 'using the newest' in said[0], said
    s = run_ok(PY, '-c', SAMPLE, '--ckpt', out, '--max-new-tokens', '3', '--device', 'cpu')
    assert f"using the newest, {out/'ckpt'} (step 10)" in s.stderr, s.stderr
    # a run without FSDP reads ckpt.pt, which is older: it refuses rather than go back to step 5
    bad = run_cmd(PY, *train_args(data, out, *RUN, '--batch-size', '4', '--max-steps', '12', '--resume'))
    assert_one_line_error(bad, 'newest checkpoint', 'step 10', '--parallel fsdp')


def test_damaged_shard_file_is_one_line(data, fsdp, tmp_path):
    "A .distcp file cut short: resuming, loading and sampling each refuse in one line (DCP's error is a BaseException)."
    out = tmp_path/'run'; shutil.copytree(fsdp, out)
    f = out/'ckpt'/'__0_0.distcp'; f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    r = run_cmd(PY, *train_args(data, out, *RUN, '--batch-size', '4', '--parallel', 'fsdp', '--max-steps', '12', '--resume'))
    assert_one_line_error(r, 'cannot read the sharded checkpoint', 'damaged')
    assert_one_line_error(run_cmd(PY, '-c', SAMPLE, '--ckpt', out, '--device', 'cpu'), 'cannot read the sharded checkpoint')
    assert_one_line_error(run_cmd(PY, '-c', CONS, '--ckpt', out), 'cannot read the sharded checkpoint')
    assert not (out/'ckpt.pt').exists()


def test_consolidate_to_unwritable_out(fsdp, tmp_path):
    "--out is checked before the shards are read: a folder that does not exist, or a path that is a folder."
    assert_one_line_error(run_cmd(PY, '-c', CONS, '--ckpt', fsdp, '--out', tmp_path/'no'/'c.pt'), 'cannot write --out', 'does not exist')
    assert_one_line_error(run_cmd(PY, '-c', CONS, '--ckpt', fsdp, '--out', tmp_path), 'cannot write --out', 'is a folder')


# --- acceptance 3: activation checkpointing changes nothing but memory and time --------------------------------------

def test_activation_checkpointing_same_run(data, one, tmp_path):
    run_ok(PY, *train_args(data, tmp_path, *RUN, '--batch-size', '4', '--activation-checkpointing'))
    assert records(tmp_path) == records(one)  # bit for bit
    assert json.loads((tmp_path/'config.json').read_text())['train']['activation_checkpointing'] is True


# --- acceptance 4: --batch-size auto under two budgets --------------------------------------------------------------

def test_auto_batch_fits_two_budgets(tmp_path):
    """Budgets set from this machine's own trial step: 5% above 16 rows' measured peak plus the margin, and 5% below it.
    Each run picks its micro-batch (the total batch kept) and its measured peak resident memory stays within its budget."""
    from gpt2_nb.budget import CPU_MARGIN
    data = make_shards(tmp_path/'data', n_train=300_000, n_val=20_000, vocab=50_000)
    def run(budget):
        out = tmp_path/budget
        args = ['--data', data, '--out', out, '--device', 'cpu', '--seq-len', '128', '--total-batch', '2048', '--batch-size', 'auto',
                '--memory-budget', budget, '--max-steps', '2', '--eval-every', '2', '--eval-batches', '2', '--sample-tokens', '8']
        rc, rss = peak_rss_run('gpt2_nb.train', args, tmp_path/f'{budget}.log', env=ENV)  # VmHWM of the training process
        log = (tmp_path/f'{budget}.log').read_text()
        assert rc == 0, log[-3000:]
        info = json.loads((out/'config.json').read_text())
        B, mem = info['train']['batch_size'], info['memory']
        assert mem['batch_size'] == 'auto' and mem['micro_batch'] == B and info['total_batch'] == 2048
        assert info['grad_accum_steps'] == 16 // B and f'--batch-size auto: {B} rows' in log
        print(f"\nbudget {budget}: micro-batch {B} x {16 // B} micro-steps, trial step {mem['measured'] / 2**20:.0f} MiB, "
              f"measured peak resident {rss / 2**20:.0f} MiB")
        assert mem['measured'] <= parse_size(budget) * (1 - CPU_MARGIN) and rss <= parse_size(budget), (rss, budget)
        return B, mem['measured']
    B, m16 = run('16GiB')
    assert B == 16
    above, below = (f"{int(m16 / (1 - CPU_MARGIN) * f / 2**20)}MiB" for f in (1.05, 0.95))  # 5%: trials vary by a few MiB
    assert run(above)[0] == 16
    assert run(below)[0] < 16


def test_auto_batch_bad_inputs(data, tmp_path):
    assert_one_line_error(run_cmd(PY, *train_args(data, tmp_path/'o', '--batch-size', 'auto', '--memory-budget', '3 gigs')), '512MiB')
    assert_one_line_error(run_cmd(PY, *train_args(data, tmp_path/'o', '--batch-size', 'auto', '--memory-budget', '100MiB')), '--memory-budget')
    assert_one_line_error(run_cmd(PY, *train_args(data, tmp_path/'o', '--memory-budget', '1GiB')), '--batch-size auto')
    assert not (tmp_path/'o').exists()


# --- acceptance 5: two torchrun "nodes" on loopback == one process; resumed exactly ------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


def two_nodes(args, timeout=600):
    "Start two torchrun agents of one process each, as nodes 0 and 1 of a c10d rendezvous on 127.0.0.1; wait for both."
    port = free_port()
    env = {**os.environ, **ENV, 'PYTHONUNBUFFERED': '1', 'HF_HUB_OFFLINE': '1'}; env.pop('IN_TEST', None)
    procs = [subprocess.Popen([PY, '-m', 'torch.distributed.run', '--nnodes', '2', '--node-rank', str(r), '--nproc-per-node', '1',
                               '--rdzv-backend', 'c10d', '--rdzv-endpoint', f'127.0.0.1:{port}', '--rdzv-id', f'gpt2nb{port}',
                               *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for r in (0, 1)]
    outs = [p.communicate(timeout=timeout) for p in procs]
    for p, (o, e) in zip(procs, outs): assert p.returncode == 0, e[-3000:]
    return ''.join(o for o, _ in outs)


def test_two_nodes_equal_one_process(data, one, ddp, tmp_path):
    args = train_args(data, tmp_path, *RUN, '--batch-size', '2')
    out = two_nodes([*args, '--stop-at', '5'])
    assert '2 processes' in out and 'stopped after step 5' in out
    out = two_nodes([*args, '--resume'])
    assert f'resuming {tmp_path} at step 5' in out
    assert records(tmp_path) == records(ddp)  # two nodes of one process each compute what two local processes do, bit for bit
    dl, _ = close(records(tmp_path), records(one), loss_tol=1e-5, norm_rel=1e-4)
    print(f"\ntwo nodes (stopped at 5, resumed) vs one process: max |loss difference| {dl:.2e}")


# --- leaving the process group: freed with its threads while Python is whole; the ranks leave together -------------

LEAVE = """
import os, sys
from gpt2_nb.train import train, train_parser, TrainConfig
train(TrainConfig(**vars(train_parser().parse_args(sys.argv[1:]))))
names = sorted(open(f'/proc/self/task/{i}/comm').read().strip() for i in os.listdir('/proc/self/task'))
with open(f"{os.environ['OUT']}/rank{os.environ['RANK']}.txt", 'w') as f: f.write(' '.join(names))  # (two prints can interleave)
"""

def test_leaving_frees_the_process_group(data, tmp_path):
    """After a 2-process DDP run, `train` has freed the process group: no gloo thread is left to die in interpreter shutdown.
    (DDP imports torch.distributed.nn, whose functions take `group.WORLD` as a default argument when imported: imported
    after init_process_group, they kept the group, and 'pt_gloo_runloop' and 'gloo_tcp_loop' threads ran to the end, where
    a rank that left straight after its last collective sometimes aborted: 'terminate called without an active exception'.)"""
    script = tmp_path/'leave.py'; script.write_text(LEAVE)
    args = train_args(data, tmp_path/'run', *RUN, '--batch-size', '2')[2:]  # without '-m gpt2_nb.train'
    r = run_cmd(*TORCHRUN, script, *args, env={**ENV, 'OUT': str(tmp_path)}, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    for rank in (0, 1): assert (tmp_path/f'rank{rank}.txt').read_text() == 'python'  # the threads left: the main one


# --- the memory model's GPU script, on the CPU ------------------------------------------------------------------------

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


# --- gpt2nb_prepare --streaming -------------------------------------------------------------------------------------

PREP = "import sys; from gpt2_nb.data import prepare_cli; sys.argv[0] = 'gpt2nb_prepare'; prepare_cli()"

def test_prepare_streaming_same_shards(tmp_path):
    "The bundled sample read as a datasets stream (IterableDataset) gives the shards of the ordinary path, byte for byte."
    from gpt2_nb.data import SAMPLE_PATH
    common = ['--source', SAMPLE_PATH, '--shard-tokens', '200000', '--workers', '2']
    run_ok(PY, '-c', PREP, *common, '--out', tmp_path/'plain')
    r = run_ok(PY, '-c', PREP, *common, '--out', tmp_path/'stream', '--streaming')
    a, b = (json.loads((tmp_path/d/'manifest.json').read_text()) for d in ('plain', 'stream'))
    assert len(a['shards']) > 3 and a['shards'] == b['shards']  # names, token counts and sha256 of every shard
    assert (a['tokens'], a['documents']) == (b['tokens'], b['documents'])
    assert_one_line_error(run_cmd(PY, '-c', PREP, '--source', 'someone/no-such-dataset', '--streaming', '--out', tmp_path/'hub'),
                          'cannot be reached')
    assert not (tmp_path/'hub').exists()
