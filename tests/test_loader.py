"Fault tests for `gpt2_nb.loader`: every bad data folder or setting gives a one-line `GPT2NBError` naming the fix."
import json
import numpy as np
import pytest

from conftest import run_cmd, assert_one_line_error, PY
from gpt2_nb.core import GPT2NBError
from gpt2_nb.loader import TokenLoader, write_shards


def make_shards(d, train=(1000, 400), val=(300,)):
    "Counting-token shards and a manifest, as gpt2nb_prepare writes them."
    count = lambda sizes: [(np.arange(n) % 2**16).astype(np.uint16) for n in sizes]
    return write_shards(d, dict(train=count(train), val=count(val)), source='counting')


def _manifest(d, **changes):
    m = json.loads((d / 'manifest.json').read_text()); m.update(changes)
    (d / 'manifest.json').write_text(json.dumps(m))


def _shards(d, fn):
    "Rewrite the manifest's shard list by `fn(list)`, as a hand edit would; returns the folder."
    m = json.loads((d / 'manifest.json').read_text()); m['shards'] = fn(m['shards'])
    (d / 'manifest.json').write_text(json.dumps(m))
    return d


def _ids(d, fn):
    "Change token ids of the first train shard in place (`fn(array)`), its size and header unchanged; returns the folder."
    a = np.load(d / 'train_000000.npy'); fn(a); np.save(d / 'train_000000.npy', a)
    return d


def _rewrite(d, fn):
    "Replace the first train shard's bytes by `fn(old bytes)`; returns the folder."
    f = d / 'train_000000.npy'
    f.write_bytes(fn(f.read_bytes()))
    return d


# Each case breaks a good folder (or picks bad settings) and names words the one-line message must contain.
CASES = {
    'missing folder':   (lambda d: d / 'nope', {}, ['does not exist', 'gpt2nb_prepare']),
    'no manifest':      (lambda d: (d / 'manifest.json').unlink() or d, {}, ['no manifest.json', 'gpt2nb_prepare']),
    'manifest not json': (lambda d: ((d / 'manifest.json').write_text('{"shards": ['), d)[1], {}, ['cannot read manifest', 'gpt2nb_prepare']),
    'manifest no shards': (lambda d: _manifest(d, shards='x') or d, {}, ["no 'shards' list", 'gpt2nb_prepare']),
    'manifest a list':  (lambda d: (d / 'manifest.json').write_text('[]') and d, {}, ['not a JSON object', 'gpt2nb_prepare']),
    'manifest version': (lambda d: _manifest(d, version=7) or d, {}, ['version 7', 'gpt2nb_prepare']),
    'entry removed':    (lambda d: _shards(d, lambda sh: [s for s in sh if s['file'] != 'train_000000.npy']), {},
                         ['does not list the train shards', 'gpt2nb_prepare']),
    'last entry removed': (lambda d: _shards(d, lambda sh: [s for s in sh if s['file'] != 'train_000001.npy']), {},
                           ['lists 1,000 train tokens in its shards but 1400', 'gpt2nb_prepare']),
    'entry added':      (lambda d: _shards(d, lambda sh: sh + [sh[0]]), {}, ['train shards once each', 'gpt2nb_prepare']),
    'tokens a string':  (lambda d: _shards(d, lambda sh: [dict(s, tokens=str(s['tokens'])) for s in sh]), {}, ["token count of '1000'"]),
    'sha256 missing':   (lambda d: _shards(d, lambda sh: [{k: v for k, v in s.items() if k != 'sha256'} for s in sh]), {}, ['no sha256']),
    'file renamed':     (lambda d: _shards(d, lambda sh: [dict(s, file='../x.npy') for s in sh]), {}, ["file '../x.npy'"]),
    'ids overwritten':  (lambda d: _ids(d, lambda a: a.__setitem__(slice(100, 300), 7)), {}, ['does not match its sha256', 'gpt2nb_prepare']),
    'missing split':    (lambda d: _manifest(d, shards=[s for s in json.loads((d / 'manifest.json').read_text())['shards']
                                                        if s['split'] == 'train'], tokens=dict(train=1400, val=0)) or d,
                         dict(split='val'), ["no 'val' shards", '--val-tokens']),
    'unknown split':    (lambda d: d, dict(split='test'), ["no 'test' shards", "'train' or 'val'"]),
    'missing shard':    (lambda d: (d / 'train_000000.npy').unlink() or d, {}, ['missing', 'gpt2nb_prepare']),
    'too short':        (lambda d: d, dict(split='val', batch_size=4, seq_len=100), ['too short for one batch', '--batch-size', '--seq-len']),
    'too short ddp':    (lambda d: d, dict(batch_size=4, seq_len=120, rank=1, world_size=3), ['too short for one batch', 'over 3 ranks']),
    'wrong dtype':      (lambda d: np.save(d / 'train_000000.npy', np.arange(1000, dtype=np.int32)) or d, {}, ['int32', 'uint16', 'gpt2nb_prepare']),
    'big-endian':       (lambda d: np.save(d / 'train_000000.npy', np.arange(1000, dtype='>u2')) or d, {}, ['>u2', 'uint16']),
    '2-d shard':        (lambda d: np.save(d / 'train_000000.npy', np.zeros((10, 100), np.uint16)) or d, {}, ['1-d uint16']),
    'truncated':        (lambda d: _rewrite(d, lambda b: b[:-100]), {}, ['truncated or corrupt', 'gpt2nb_prepare']),
    'truncated header': (lambda d: _rewrite(d, lambda b: b[:40]), {}, ['truncated or corrupt']),
    'not npy':          (lambda d: _rewrite(d, lambda b: b'PAR1' * 600), {}, ['not a .npy file']),
    'trailing bytes':   (lambda d: _rewrite(d, lambda b: b + bytes(8)), {}, ['corrupt', 'header says']),
    'size vs manifest': (lambda d: np.save(d / 'train_000000.npy', np.arange(999, dtype=np.uint16)) or d, {}, ['999', 'manifest says 1,000']),
    'batch size 0':     (lambda d: d, dict(batch_size=0), ['batch_size', '--batch-size 1']),
    'seq len float':    (lambda d: d, dict(seq_len=64.0), ['seq_len', '--seq-len']),
    'negative seed':    (lambda d: d, dict(seed=-1), ['seed', '--seed 0']),
    'rank too big':     (lambda d: d, dict(rank=2, world_size=2), ['rank 2', 'torchrun']),
}


@pytest.mark.parametrize('case', CASES)
def test_bad_folder_or_settings(tmp_path, case):
    breaks, kw, needles = CASES[case]
    d = breaks(make_shards(tmp_path))
    with pytest.raises(GPT2NBError) as e: TokenLoader(d, **{'batch_size': 2, 'seq_len': 8, **kw})
    msg = str(e.value)
    assert '\n' not in msg, msg
    for n in needles: assert n.lower() in msg.lower(), (n, msg)


def test_good_folder_still_loads(tmp_path):
    "The control for the cases above: the unbroken folder gives batches."
    x, y = TokenLoader(make_shards(tmp_path), batch_size=2, seq_len=8).next_batch()
    assert x.shape == y.shape == (2, 8) and (x[:, 1:] == y[:, :-1]).all()


def test_short_last_shard_is_fine(tmp_path):
    "A split's last shard is usually partial: shorter than one window, it just adds no windows."
    tl = TokenLoader(make_shards(tmp_path, train=(1000, 5)), batch_size=2, seq_len=8)
    assert len(tl) == (999 // 8) // 2
    for _ in range(3 * len(tl)): tl.next_batch()


STATE_CASES = {
    'batch_size': (dict(batch_size=3), '--batch-size'),
    'seq_len':    (dict(seq_len=16), '--seq-len'),
    'seed':       (dict(seed=1), '--seed'),
    'world_size': (dict(world_size=2), 'same number of processes'),
    'split':      (dict(split='val', shuffle=True), 'same split'),
    'shuffle':    (dict(shuffle=False), 'shuffle'),
}


@pytest.mark.parametrize('case', STATE_CASES)
def test_state_from_another_setup(tmp_path, case):
    d = make_shards(tmp_path)
    s = TokenLoader(d, batch_size=2, seq_len=8).state_dict()
    kw, needle = STATE_CASES[case]
    with pytest.raises(GPT2NBError, match=needle): TokenLoader(d, **{'batch_size': 2, 'seq_len': 8, **kw}).load_state_dict(s)


def test_state_from_other_data(tmp_path):
    (tmp_path / 'a').mkdir(); (tmp_path / 'b').mkdir()
    s = TokenLoader(make_shards(tmp_path / 'a'), batch_size=2, seq_len=8).state_dict()
    other = TokenLoader(make_shards(tmp_path / "b", train=(1000, 500)), batch_size=2, seq_len=8)
    with pytest.raises(GPT2NBError, match='--data'): other.load_state_dict(s)
    with pytest.raises(GPT2NBError, match='invalid'): other.load_state_dict({**other.state_dict(), 'epoch': -1})


@pytest.mark.parametrize('case', ['truncated', 'wrong dtype', 'too short'])
def test_one_line_through_run_cli(tmp_path, case):
    "Through `run_cli`, as the training CLI calls it: one line on stderr, exit 2, no traceback."
    breaks, kw, needles = CASES[case]
    d = breaks(make_shards(tmp_path))
    code = ("import sys, json; from gpt2_nb.core import run_cli; from gpt2_nb.loader import TokenLoader; "
            "run_cli(TokenLoader, sys.argv[1], **json.loads(sys.argv[2]))")
    r = run_cmd(PY, '-c', code, d, json.dumps({'batch_size': 2, 'seq_len': 8, **kw}), timeout=120)
    assert r.returncode == 2
    assert_one_line_error(r, 'error:', *needles)


def test_imports_without_dev_packages():
    "The library module needs only numpy and torch: it must import with fastcore and friends unavailable."
    code = ("import sys\nfor m in ('fastcore', 'datasets', 'transformers', 'safetensors', 'pyarrow'): sys.modules[m] = None\n"
            "import gpt2_nb.loader")
    r = run_cmd(PY, '-c', code, timeout=120)
    assert r.returncode == 0, r.stderr
