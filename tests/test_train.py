"Training: accumulation and DDP equivalence, exact resume after Ctrl-C and SIGKILL, NaN stop, bad inputs, sampling."
import json, os, signal, subprocess, sys, time
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import run_cmd, assert_one_line_error, PY, REPO, SHAPE, TINY, RESUME, make_shards, train_args, records
from gpt2_nb.loop import TrainConfig
from gpt2_nb.train import train
from gpt2_nb.runs import read_log
from gpt2_nb.checkpoint import load_checkpoint

def compare(a, b, loss_tol=1e-5, norm_rel=1e-4):
    assert [r['step'] for r in a] == [r['step'] for r in b]
    for x, y in zip(a, b):
        assert abs(x['loss'] - y['loss']) <= loss_tol, (x, y)
        assert abs(x['grad_norm'] - y['grad_norm']) <= norm_rel * y['grad_norm'], (x, y)


# --- acceptance 1: accumulation -------------------------------------------------------------------------------------

def test_accumulation_equals_big_batch(data, tmp_path):
    "total batch 4*T: one micro-batch of 4 rows vs 4 accumulated micro-batches of 1 row, 5 steps, fp32 CPU."
    common = dict(data=str(data), n_layer=2, n_head=4, n_embd=64, seq_len=32, total_batch=4*32, max_steps=5, lr=3e-3,
                  warmup_steps=2, eval_every=100, eval_batches=2, sample_tokens=4, device='cpu', precision='fp32')
    quiet = lambda *a, **k: None
    train(TrainConfig(out=str(tmp_path/'b4'), batch_size=4, **common), say=quiet)
    train(TrainConfig(out=str(tmp_path/'b1'), batch_size=1, **common), say=quiet)
    a, b = records(tmp_path/'b4'), records(tmp_path/'b1')
    assert len(a) == 5
    compare(a, b)
    assert a[-1]['loss'] < a[0]['loss']  # it trains
    assert len({r['loss'] for r in a}) == 5


# --- acceptance 2: resume after Ctrl-C and after SIGKILL --------------------------------------------------------------

def interrupt_when(args, pattern, sig, timeout=120):
    "Start a training run; when a stdout line contains `pattern`, send `sig`; return (returncode, stdout, stderr)."
    env = {**os.environ, 'PYTHONUNBUFFERED': '1'}; env.pop('IN_TEST', None)
    p = subprocess.Popen([PY, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines, t0 = [], time.time()
    for line in p.stdout:
        lines.append(line)
        if pattern in line: p.send_signal(sig); break
        assert time.time() - t0 < timeout
    out, err = p.communicate(timeout=timeout)
    return p.returncode, ''.join(lines) + out, err

@pytest.mark.parametrize('how', ['sigint', 'sigkill'])
def test_resume_equals_uninterrupted(small_data, tmp_path, uninterrupted, how):
    args = train_args(small_data, tmp_path, *RESUME)
    if how == 'sigint':  # Ctrl-C after step 10: a checkpoint at the end of the current step, exit 130, no traceback
        rc, out, err = interrupt_when(args, 'step    10/20 | loss', signal.SIGINT)
        assert rc == 130, (rc, out, err)
        assert 'Traceback' not in err and 'checkpoint saved' in out, (out, err)
    else:  # SIGKILL right after the checkpoint of step 10: the log may hold a few steps more, which resume redoes
        rc, out, err = interrupt_when(args, 'step 10: checkpoint saved', signal.SIGKILL)
        assert rc == -signal.SIGKILL
    stopped = load_checkpoint(tmp_path)['step']
    assert 10 <= stopped < 20, stopped
    r = run_cmd(PY, *args, '--resume', timeout=300)
    assert r.returncode == 0, r.stderr
    assert f'resuming {tmp_path} at step {stopped}' in r.stdout
    assert records(tmp_path) == records(uninterrupted)  # exactly: loss for loss, bit for bit
    assert records(tmp_path, 'val_loss') == records(uninterrupted, 'val_loss')
    assert len(records(tmp_path)) == 20


# --- acceptance 3: DDP with 2 ranks (gloo) equals one process ---------------------------------------------------------

def test_ddp_equals_single_process(data, tmp_path):
    "2 ranks x batch 1 x 2 micro-steps vs 1 process x batch 4: total batch 4*T, 5 steps."
    common = ['--total-batch', '128', '--max-steps', '5', '--warmup-steps', '2', '--eval-every', '100', '--lr', '3e-3']
    r1 = run_cmd(PY, *train_args(data, tmp_path/'one', *common, '--batch-size', '4'), timeout=300)
    assert r1.returncode == 0, r1.stderr
    r2 = run_cmd(PY, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2',
                 *train_args(data, tmp_path/'ddp', *common, '--batch-size', '1'), timeout=300, env={'OMP_NUM_THREADS': '1'})
    assert r2.returncode == 0, r2.stderr[-3000:]
    assert '2 processes' in r2.stdout and 'x 2 micro-steps' in r2.stdout
    compare(records(tmp_path/'ddp'), records(tmp_path/'one'))
    assert load_checkpoint(tmp_path/'ddp')['world_size'] == 2


# --- acceptance 5 and the NaN stop: bad inputs give one line, a non-zero exit, no traceback ---------------------------

def test_missing_data_folder(tmp_path):
    r = run_cmd(PY, *train_args(tmp_path/'nothing', tmp_path/'out', '--max-steps', '2'))
    assert_one_line_error(r, 'does not exist', 'gpt2nb_prepare')
    assert not (tmp_path/'out').exists()

def test_total_batch_not_dividing(data, tmp_path):
    r = run_cmd(PY, *train_args(data, tmp_path/'out', '--batch-size', '4', '--total-batch', '1000'))
    assert_one_line_error(r, 'not a multiple', '--total-batch')
    assert not (tmp_path/'out').exists()

def test_resume_without_checkpoint(data, tmp_path):
    r = run_cmd(PY, *train_args(data, tmp_path/'out', '--resume'))
    assert_one_line_error(r, 'no checkpoint', '--resume')
    assert not (tmp_path/'out').exists()

@pytest.fixture(scope='module')
def short_run(data, tmp_path_factory):
    out = tmp_path_factory.mktemp('short')
    r = run_cmd(PY, *train_args(data, out, '--batch-size', '2', '--max-steps', '3', '--eval-every', '3'), timeout=300)
    assert r.returncode == 0, r.stderr
    return out

def test_checkpoint_of_another_config(data, short_run):
    before = (short_run/'log.jsonl').read_text()
    r = run_cmd(PY, *train_args(data, short_run, '--batch-size', '2', '--max-steps', '6', '--resume', '--n-embd', '128'))
    assert_one_line_error(r, 'another model', 'n_embd')
    assert (short_run/'log.jsonl').read_text() == before  # nothing touched

def test_corrupt_checkpoint(data, short_run, tmp_path):
    out = tmp_path/'run'; out.mkdir()
    (out/'ckpt.pt').write_bytes((short_run/'ckpt.pt').read_bytes()[:10_000])
    r = run_cmd(PY, *train_args(data, out, '--batch-size', '2', '--max-steps', '6', '--resume'))
    assert_one_line_error(r, 'cannot read checkpoint', 'ckpt.pt')
    assert sorted(p.name for p in out.iterdir()) == ['ckpt.pt']

def test_nan_stops_and_keeps_last_checkpoint(data, tmp_path):
    "An absurd learning rate makes the loss non-finite at step 2; the checkpoint of step 1 stays loadable."
    r = run_cmd(PY, *train_args(data, tmp_path, '--batch-size', '2', '--max-steps', '10', '--lr', '1e30', '--warmup-steps', '0',
                                '--ckpt-every', '1', '--eval-every', '100'))
    line = assert_one_line_error(r, 'at step 2', 'last good checkpoint', '--lr')
    assert 'nan' in line or 'inf' in line, line
    ck = load_checkpoint(tmp_path)
    assert ck['step'] == 1
    assert [x['step'] for x in records(tmp_path)] == [1]

def test_bad_flags_one_line(data, tmp_path):
    assert_one_line_error(run_cmd(PY, *train_args(data, tmp_path/'o', '--precision', 'fp16')), 'invalid choice')
    assert_one_line_error(run_cmd(PY, *train_args(data, tmp_path/'o', '--n-embd', '100', '--n-head', '3')), 'divisible')
    assert_one_line_error(run_cmd(PY, *train_args(data, tmp_path/'o', '--max-steps', '0')), '--max-steps')
    assert not (tmp_path/'o').exists()


# --- outputs and sampling -------------------------------------------------------------------------------------------

def test_run_folder(short_run):
    assert sorted(p.name for p in short_run.iterdir()) == ['ckpt.pt', 'config.json', 'log.jsonl', 'loss.png', 'samples.txt']
    recs = read_log(short_run/'log.jsonl')
    train_recs, evals = [r for r in recs if 'loss' in r], [r for r in recs if 'val_loss' in r]
    for r in train_recs: assert {'step', 'loss', 'lr', 'grad_norm', 'tokens_per_sec', 'dt_ms'} <= r.keys()
    assert [r['step'] for r in evals] == [0, 3] and all('sample' in r for r in evals)
    assert (short_run/'loss.png').read_bytes()[:4] == b'\x89PNG'
    assert '--- step 3' in (short_run/'samples.txt').read_text()
    ck = torch.load(short_run/'ckpt.pt', weights_only=True)
    assert ck['step'] == 3 and not any(k.startswith(('_orig_mod.', 'module.')) for k in ck['model'])

SAMPLE = "import sys; from gpt2_nb.generate import sample_cli; sys.argv[0] = 'gpt2nb_sample'; sample_cli()"

def test_sample_cli(short_run):
    "gpt2nb_sample continues a prompt from a checkpoint (or its run folder), the same for the same seed."
    args = ['--prompt', 'The', '--max-new-tokens', '6', '--seed', '3', '--device', 'cpu']
    r1 = run_cmd(PY, '-c', SAMPLE, '--ckpt', short_run/'ckpt.pt', *args)
    r2 = run_cmd(PY, '-c', SAMPLE, '--ckpt', short_run, *args)
    assert r1.returncode == 0, r1.stderr
    assert r1.stdout == r2.stdout and r1.stdout.startswith('The') and len(r1.stdout) > 4
    assert_one_line_error(run_cmd(PY, '-c', SAMPLE, '--ckpt', short_run/'nothing.pt'), 'no checkpoint')
    assert_one_line_error(run_cmd(PY, '-c', SAMPLE, '--ckpt', short_run, '--max-new-tokens', '0'), '--max-new-tokens')


# --- settings chosen by what the hardware has -----------------------------------------------------------------------

def auto_args(data, out, *extra):
    "A tiny CPU run with no precision, compile or loss flags: the hardware decides."
    return ['-m', 'gpt2_nb.train', '--data', data, '--out', out, '--device', 'cpu', *SHAPE, '--batch-size', '2',
            '--eval-batches', '1', '--sample-tokens', '4', '--log-every', '1', *extra]

def test_auto_settings_printed_and_recorded(data, tmp_path):
    "One line at the start says what was chosen and why; config.json records it; the run uses it."
    from gpt2_nb.precision import choose_settings, settings_line
    r = run_cmd(PY, *auto_args(data, tmp_path, '--max-steps', '3'), check=True)
    lines = [l for l in r.stdout.splitlines() if l.startswith('settings: ')]
    want = choose_settings('cpu', steps=3)
    assert lines == [settings_line(want)], r.stdout
    cfg = json.loads((tmp_path/'config.json').read_text())
    s = cfg['settings']
    assert (s['precision'], s['compile'], s['loss']) == (want['precision'], False, 'chunked')  # 3 steps: too few to compile
    assert s['why'] == want['why'] and s['why']['precision'].startswith('auto: ') and s['why']['compile'].startswith('auto: ')
    assert (cfg['train']['precision'], cfg['sources']['precision'], cfg['sources']['compile']) == (want['precision'], 'auto', 'auto')
    assert f"cpu, {want['precision']}, flash attention" in r.stdout  # the setup line shows the precision it trains in

def test_flags_win_over_auto(data, tmp_path):
    "Explicit --precision, --loss and --no-compile are kept as given."
    run_cmd(PY, *auto_args(data, tmp_path, '--max-steps', '2', '--precision', 'tf32', '--loss', 'plain', '--no-compile'), check=True)
    s = json.loads((tmp_path/'config.json').read_text())['settings']
    assert (s['precision'], s['compile'], s['loss']) == ('tf32', False, 'plain')
    assert {v for k, v in s['why'].items() if k != 'memory'} == {'given'}  # (how freed memory is handled is not a flag)
    assert_one_line_error(run_cmd(PY, *auto_args(data, tmp_path/'x', '--loss', 'tiled')), 'invalid choice')

def test_losses_train_alike(data, tmp_path):
    "--loss fused and --loss chunked train as --loss plain does: the same losses and gradient norms, fp32, 3 steps."
    runs = {}
    for loss in ('plain', 'chunked', 'fused'):
        run_cmd(PY, *auto_args(data, tmp_path/loss, '--max-steps', '3', '--precision', 'fp32', '--no-compile',
                               '--loss', loss), check=True)
        assert json.loads((tmp_path/loss/'config.json').read_text())['settings']['loss'] == loss
        runs[loss] = records(tmp_path/loss)
    assert len(runs['plain']) == 3
    compare(runs['fused'], runs['plain'])
    compare(runs['chunked'], runs['plain'])

def test_dry_run_shows_auto_choices(data, tmp_path):
    "--dry-run plans with the same choices a run would make (a 500-step run on this machine), and says they are auto."
    from gpt2_nb.precision import choose_settings, settings_reasons
    r = run_cmd(PY, *auto_args(data, tmp_path/'x', '--max-steps', '500', '--dry-run'), check=True)
    plan = dict(l.split(': ', 1) for l in r.stdout.splitlines() if ': ' in l)
    want = choose_settings('cpu', steps=500)
    assert (plan['precision'], plan['compile'], plan['loss']) == (f"{want['precision']} (auto)", f"{want['compile']} (auto)", 'chunked (auto)')
    assert plan['settings'] == settings_reasons(want)
    assert not (tmp_path/'x').exists()

def test_auto_precision_trains_like_fp32(data, tmp_path):
    "Whatever precision auto picks here, its first losses agree with fp32's within the precision lesson's tolerance."
    from gpt2_nb.precision import choose_settings, TOLERANCES
    p = choose_settings('cpu')['precision']
    run_cmd(PY, *auto_args(data, tmp_path/'auto', '--max-steps', '4'), check=True)
    run_cmd(PY, *auto_args(data, tmp_path/'fp32', '--max-steps', '4', '--precision', 'fp32'), check=True)
    a, b = records(tmp_path/'auto'), records(tmp_path/'fp32')
    rel = max(abs(x['loss'] - y['loss']) / y['loss'] for x, y in zip(a, b))
    print(f"auto = {p}: max relative loss difference from fp32 over 4 steps {rel:.1e} (tolerance {TOLERANCES[p]})")
    assert len(a) == 4 and rel <= TOLERANCES[p]


@pytest.fixture(scope='module')
def sample_data(tmp_path_factory):
    "The bundled sample, prepared: real text, whose many distinct tokens make racing additions show in the losses."
    import contextlib, io
    from gpt2_nb.data import prepare
    out = tmp_path_factory.mktemp('sample')/'shards'
    with contextlib.redirect_stdout(io.StringIO()): prepare(out=out)
    return out

def test_compiled_run_repeats_and_resumes_exactly(sample_data, tmp_path):
    "Two compiled runs of the tiny preset log the same losses bit for bit, and so does one stopped at step 10 and resumed."
    def args(out, *extra):
        return ['-m', 'gpt2_nb.train', '--data', sample_data, '--out', out, '--device', 'cpu', '--max-steps', '20', '--compile',
                '--eval-every', '10', '--eval-batches', '1', '--ckpt-every', '10', '--sample-tokens', '4', '--log-every', '1', *extra]
    for name in ('a', 'b'): run_cmd(PY, *args(tmp_path/name), timeout=900, check=True)
    run_cmd(PY, *args(tmp_path/'c', '--stop-at', '10'), timeout=900, check=True)
    r = run_cmd(PY, *args(tmp_path/'c', '--resume'), timeout=900, check=True)
    assert 'resuming' in r.stdout and 'compiled' in r.stdout
    a, b, c = records(tmp_path/'a'), records(tmp_path/'b'), records(tmp_path/'c')
    assert len(a) == 20 and a == b == c


# --- slow: the main job and a compiled run --------------------------------------------------------------------------

@pytest.mark.slow
def test_main_job(tmp_path):
    "`gpt2nb_train` with no flags, in a fresh folder: prepares the sample, trains, in under 5 minutes, val loss clearly down."
    t0 = time.time()
    r = run_cmd(PY, '-m', 'gpt2_nb.train', cwd=tmp_path, timeout=600)
    wall = time.time() - t0
    assert r.returncode == 0, r.stderr[-3000:]
    evals = records(tmp_path/'runs'/'tiny', 'val_loss')
    print(f"main job: {wall:.0f} s, val loss {evals[0]['val_loss']:.3f} -> {evals[-1]['val_loss']:.3f}")
    assert wall < 300
    assert evals[-1]['val_loss'] < evals[0]['val_loss'] - 3
    assert 'outputs in runs/tiny/' in r.stdout

@pytest.mark.slow
def test_compiled_run(data, tmp_path):
    "--compile: training, evaluation and sampling all run."
    r = run_cmd(PY, *train_args(data, tmp_path, '--batch-size', '2', '--max-steps', '2', '--eval-every', '2', '--compile'), timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert [x['step'] for x in records(tmp_path, 'val_loss')] == [0, 2]
