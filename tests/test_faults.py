"""Faults: a training run killed with SIGKILL — mid-step, mid-eval, mid-save, or at a random moment — then resumed;
a full disk under gpt2nb_prepare and under a run's checkpoint; two runs on one folder; a killed torchrun launcher.

After every kill the latest `ckpt.pt` must load (a kill during a save never leaves a corrupt checkpoint), and the run,
continued with `--resume` (or started again when no checkpoint had been written yet), must log exactly what an
uninterrupted run logs. The exact moments come from `gpt2_nb.train.fault_point` (`GPT2NB_KILL_AT='where:step'`).
3 trials run by default, 20 more with --runslow.
"""
import json, os, random, signal, subprocess, sys, time
from pathlib import Path

import pytest

from conftest import run_cmd, assert_one_line_error, PY, RESUME, train_args, records, make_shards
from gpt2_nb.checkpoint import load_checkpoint

SAVES = (5, 10, 15, 20)  # RESUME saves every 5 steps and evaluates every 10 (and at step 0), over 20 steps


def latest_save_before(step):
    "The step of the last complete checkpoint when a run dies while training, evaluating or saving `step`."
    done = [s for s in SAVES if s < step]  # step s evaluates, then saves: a kill at any of the three precedes its save
    return done[-1] if done else None


def start_training(args, timeout=300):
    "Start a run; return the process once it has logged its first step (start-up and the first eval are behind it)."
    env = {**os.environ, 'PYTHONUNBUFFERED': '1'}; env.pop('IN_TEST', None)
    p = subprocess.Popen([PY, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    t0 = time.time()
    for line in p.stdout:  # a few dozen short lines in all: the pipe never fills while we sleep later
        if '/20 | loss' in line: return p
        assert time.time() - t0 < timeout
    raise AssertionError(f'the run ended before its first step (exit {p.wait()})')


def kill_then_resume(data, out, uninterrupted, kill_at=None, after_s=None):
    "Run until killed (at `kill_at`='where:step', or `after_s` seconds after step 1), check the checkpoint, resume, compare."
    args = train_args(data, out, *RESUME)
    if kill_at is not None:
        r = run_cmd(PY, *args, env={'GPT2NB_KILL_AT': kill_at}, timeout=300)
        assert r.returncode == -signal.SIGKILL, (kill_at, r.returncode, r.stderr[-2000:])
    else:
        p = start_training(args)
        try: p.wait(timeout=after_s)
        except subprocess.TimeoutExpired: p.kill(); p.wait()
        p.stdout.close()
    ckpt = Path(out)/'ckpt.pt'
    stopped = load_checkpoint(ckpt)['step'] if ckpt.exists() else None  # raises if the kill left it damaged
    r = run_cmd(PY, *args, '--resume' if stopped is not None else '--restart', timeout=300)  # no checkpoint: start over
    assert r.returncode == 0, r.stderr[-2000:]
    assert records(out) == records(uninterrupted)  # loss for loss, bit for bit
    assert records(out, 'val_loss') == records(uninterrupted, 'val_loss')
    assert not list(Path(out).glob('.*.tmp')), list(Path(out).iterdir())  # leftovers of the cut write are gone
    return stopped


@pytest.mark.parametrize('kill_at', ['step:7', 'eval:10', 'save:15'])
def test_sigkill_at_exact_moment_then_resume(small_data, uninterrupted, tmp_path, kill_at):
    where, step = kill_at.split(':'); step = int(step)
    args = train_args(small_data, tmp_path, *RESUME)
    r = run_cmd(PY, *args, env={'GPT2NB_KILL_AT': kill_at}, timeout=300)
    assert r.returncode == -signal.SIGKILL, r.stderr[-2000:]
    train_steps = [x['step'] for x in records(tmp_path)]
    if where == 'step':  # killed between the backward pass and the update: step 7 never logged
        assert train_steps[-1] == step - 1
    if where == 'eval':  # step 10 trained and logged, its evaluation not
        assert train_steps[-1] == step and step not in [x['step'] for x in records(tmp_path, 'val_loss')]
    if where == 'save':  # the new checkpoint was still a temporary file; the one before it is whole
        assert list(tmp_path.glob('.ckpt.pt.*.tmp'))
    assert load_checkpoint(tmp_path)['step'] == latest_save_before(step)
    r = run_cmd(PY, *args, '--resume', timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert f'resuming {tmp_path} at step {latest_save_before(step)}' in r.stdout
    assert records(tmp_path) == records(uninterrupted) and len(records(tmp_path)) == 20
    assert records(tmp_path, 'val_loss') == records(uninterrupted, 'val_loss')
    assert not list(tmp_path.glob('.*.tmp'))


def trials(n=20, seed=0):
    "Half at exact moments drawn at random, half at random times during the training."
    rng = random.Random(seed)
    points = [f'step:{s}' for s in range(1, 21)] + [f'eval:{s}' for s in (0, 10, 20)] + [f'save:{s}' for s in SAVES]
    return ([dict(kill_at=k) for k in rng.sample(points, n // 2)] +
            [dict(after_s=rng.uniform(0.0, 1.0)) for _ in range(n - n // 2)])  # a fraction of the training time


@pytest.mark.slow
def test_twenty_kills(small_data, uninterrupted, tmp_path):
    p = start_training(train_args(small_data, tmp_path/'timing', *RESUME))
    t0 = time.time()
    assert p.wait(timeout=300) == 0
    p.stdout.close()
    train_s = time.time() - t0  # from step 1 to the end: steps 2-20, evals, saves, the last plot
    outcomes = []
    for i, t in enumerate(trials()):
        if 'after_s' in t: t = dict(after_s=t['after_s'] * train_s)  # a random moment of the training
        stopped = kill_then_resume(small_data, tmp_path/f'trial{i}', uninterrupted, **t)
        if 'kill_at' in t:
            assert stopped == latest_save_before(int(t['kill_at'].split(':')[1]))
        outcomes.append((t, stopped))
    print('\n'.join(f'{t} -> resumed from step {s}' for t, s in outcomes))  # -s shows where the kills landed
    assert len(outcomes) == 20


# --- a full disk: a small tmpfs (mounting one needs root; skipped where it cannot) --------------------------------------

@pytest.fixture
def small_disk(tmp_path):
    "mount(size) -> a tmpfs of that size at tmp_path/disk (skipped with the reason where none can be mounted), unmounted after."
    d = tmp_path/'disk'; d.mkdir()
    def mount(size):
        r = subprocess.run(['mount', '-t', 'tmpfs', '-o', f'size={size}', 'tmpfs', str(d)], capture_output=True, text=True)
        if r.returncode: pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip() or 'not root'}): the full-disk tests need one")
        return d
    yield mount
    subprocess.run(['umount', '-l', str(d)], capture_output=True)


def test_prepare_on_a_full_disk(small_disk):
    "The bundled sample's shards (2 MB) do not fit in the 1 MiB left: one line with the sizes, no shard left behind."
    disk = small_disk('24m'); (disk/'other').write_bytes(bytes(23 << 20))
    r = run_cmd('gpt2nb_prepare', '--out', disk/'data', '--workers', '1', timeout=300)
    line = assert_one_line_error(r, 'no space left on the device', 'bytes needed', 'free some space')
    print('\n' + line)
    assert sorted(p.name for p in disk.iterdir()) == ['other']  # the output folder it made is gone again


def test_checkpoint_on_a_full_disk(small_disk, tmp_path):
    "The first checkpoint (26 MB) fits, the second cannot (the old one stays until the new one is whole): one line; step 2 stays."
    disk = small_disk('40m'); data = make_shards(tmp_path/'data', n_train=20_000, n_val=2_000)
    args = ['-m', 'gpt2_nb.train', '--data', data, '--out', disk/'run', '--device', 'cpu', '--n-layer', '1', '--n-head', '2',
            '--n-embd', '32', '--seq-len', '16', '--batch-size', '2', '--max-steps', '4', '--ckpt-every', '2', '--eval-every', '4',
            '--eval-batches', '1', '--sample-tokens', '4', '--precision', 'fp32', '--no-compile']
    r = run_cmd(PY, *args, timeout=300)
    line = assert_one_line_error(r, 'no space left on the device', 'ckpt.pt', 'bytes needed')
    print('\n' + line)
    assert load_checkpoint(disk/'run')['step'] == 2  # the last good checkpoint is whole
    assert not list((disk/'run').glob('.*.tmp'))
    (disk/'run'/'log.jsonl').read_text()  # the log is there to resume from


# --- two runs on one folder, and a torchrun whose launcher was killed ---------------------------------------------------

def test_two_runs_one_folder(small_data, tmp_path):
    "Two gpt2nb_train on one --out started half a second apart: the second refuses; the first finishes, logged once."
    args = train_args(small_data, tmp_path/'run', *RESUME)
    env = {**os.environ, 'PYTHONUNBUFFERED': '1'}; env.pop('IN_TEST', None)
    first = subprocess.Popen([PY, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    time.sleep(0.5)
    second = run_cmd(PY, *args, timeout=300)
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err[-2000:]
    assert_one_line_error(second, 'in use by another process', f'pid {first.pid}')
    assert [r['step'] for r in records(tmp_path/'run')] == list(range(1, 21))  # every step once


def test_torchrun_launcher_killed(small_data, tmp_path):
    "The launcher SIGKILLed mid-run: its workers notice, stop with a checkpoint and exit; then --resume continues."
    out = tmp_path/'run'
    args = train_args(small_data, out, *RESUME, '--max-steps', '400', '--total-batch', '256')
    env = {**os.environ, 'PYTHONUNBUFFERED': '1', 'OMP_NUM_THREADS': '1'}; env.pop('IN_TEST', None)
    launcher = subprocess.Popen([PY, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2', *map(str, args)],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True)
    for line in launcher.stdout:
        if '/400 | loss' in line: break
    launcher.kill(); launcher.wait()
    t0 = time.time()
    while any(f'--out {out}' in open(f'/proc/{p}/cmdline').read().replace('\0', ' ')
              for p in os.listdir('/proc') if p.isdigit() and os.path.exists(f'/proc/{p}/cmdline')):
        assert time.time() - t0 < 120, 'the orphaned workers kept running'
        time.sleep(0.5)
    launcher.stdout.close()
    step = load_checkpoint(out)['step']
    assert 0 < step < 400, step  # stopped early, with a checkpoint
    r = run_cmd(PY, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2', *args, '--max-steps', str(step + 2),
                '--resume', env={'OMP_NUM_THREADS': '1'}, timeout=300)
    assert r.returncode == 0 and f'resuming {out} at step {step}' in r.stdout, r.stderr[-2000:]
