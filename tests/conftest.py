"Shared pytest setup: the `slow` marker (skipped unless --runslow) and helpers for running the CLIs."
import json, os, subprocess, sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]

def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="also run tests marked slow")

def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes minutes; skipped unless --runslow")

def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"): return
    skip = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords: item.add_marker(skip)

def run_cmd(*args, cwd=None, timeout=600, env=None, check=False):
    "Run `python -m ...` or a console script in a subprocess; returns CompletedProcess with text output."
    e = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONUNBUFFERED": "1", **(env or {})}
    e.pop("IN_TEST", None)
    r = subprocess.run([str(a) for a in args], cwd=cwd, env=e, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0: raise AssertionError(f"{args} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r

def assert_one_line_error(r, *needles):
    "A bad-input run: non-zero exit, no traceback, one line on stderr naming the problem."
    assert r.returncode != 0, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout, r.stderr
    lines = [l for l in r.stderr.strip().splitlines() if l.strip()]
    assert len(lines) == 1, r.stderr
    for n in needles: assert n.lower() in lines[0].lower(), (n, lines[0])
    return lines[0]

PY = sys.executable


# --- training runs shared by test_train and test_faults ---------------------------------------------------------------

SHAPE = ['--n-layer', '2', '--n-head', '4', '--n-embd', '64', '--seq-len', '32', '--eval-batches', '2', '--sample-tokens', '8']
TINY = [*SHAPE, '--precision', 'fp32', '--no-compile']  # the equivalence tests compare runs to float32's rounding
TIMING = ('tokens_per_sec', 'dt_ms', 'mfu')


def make_shards(d, n_train=60_000, n_val=8_000, vocab=512, seed=0):
    "A prepared-data folder of random tokens below `vocab`, one shard per split (written as gpt2nb_prepare writes them)."
    from gpt2_nb.loader import write_shards
    rng = np.random.default_rng(seed)
    return write_shards(d, {split: [rng.integers(0, vocab, n).astype(np.uint16)] for split, n in (('train', n_train), ('val', n_val))})


@pytest.fixture(scope='module')
def data(tmp_path_factory): return make_shards(tmp_path_factory.mktemp('data'))


def train_args(data, out, *extra):
    "The `python -m gpt2_nb.train` arguments of a tiny CPU run on `data` into `out`."
    return ['-m', 'gpt2_nb.train', '--data', data, '--out', out, '--device', 'cpu', *TINY, *extra]

def records(out, kind='loss'):
    "A run's train ('loss') or eval ('val_loss') records, without the timing fields."
    from gpt2_nb.runs import read_log
    return [{k: v for k, v in r.items() if k not in TIMING} for r in read_log(Path(out)/'log.jsonl') if kind in r]

RESUME = ['--batch-size', '4', '--max-steps', '20', '--warmup-steps', '3', '--lr', '3e-3', '--eval-every', '10',
          '--eval-batches', '1', '--sample-tokens', '4', '--ckpt-every', '5', '--log-every', '1']

@pytest.fixture(scope='session')
def small_data(tmp_path_factory):
    "So little data (11 batches of 4 rows) that 20 steps run through it almost twice: resume across an epoch boundary."
    return make_shards(tmp_path_factory.mktemp('small'), n_train=1_500, n_val=800)

@pytest.fixture(scope='session')
def uninterrupted(small_data, tmp_path_factory):
    out = tmp_path_factory.mktemp('full')
    r = run_cmd(PY, *train_args(small_data, out, *RESUME), timeout=300)
    assert r.returncode == 0, r.stderr
    epochs = [x['epoch'] for x in records(out)]
    assert epochs[10] == 0 and epochs[11] == 1  # 11 batches per epoch: step 12 starts the second
    return out
