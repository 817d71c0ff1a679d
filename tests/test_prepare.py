"Tests of gpt2nb_prepare: round trip through shards, crash and rerun, worker counts, spawn, bad inputs."
import json, os, signal, subprocess, sys, time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from conftest import run_cmd, assert_one_line_error, PY, REPO
from gpt2_nb.data import prepare, prepare_cli, SAMPLE_PATH, MANIFEST
from gpt2_nb.tokenizer import get_encoding, EOT

PREPARE = str(Path(PY).parent/'gpt2nb_prepare')  # the console script installed beside this Python
HARD = ["", " ", "\n\n\n", "a document that mentions <|endoftext|> as text", "👋🏽 日本語 e\u0301 \u00e9",
        "tabs\t\tand   spaces  \r\n and a trailing newline\n"]

def sample_docs(n):
    "The first `n` documents of the bundled sample, with some hard ones mixed in."
    import pyarrow.parquet as pq
    docs = pq.read_table(SAMPLE_PATH, columns=['text']).column(0).to_pylist()[:n]
    for i, h in enumerate(HARD): docs.insert(7 * i + 3, h)
    return docs

def write_jsonl(path, docs):
    with open(path, 'w', encoding='utf-8') as f:
        for i, d in enumerate(docs): f.write(json.dumps({'id': i, 'text': d}, ensure_ascii=False) + '\n')
    return path

def shard_shas(out):
    m = json.loads((Path(out)/MANIFEST).read_text())
    return {s['file']: s['sha256'] for s in m['shards']}

def decode_split(out, split):
    "Documents of one split, decoded from its shards by splitting the token stream on EOT."
    m = json.loads((Path(out)/MANIFEST).read_text())
    arrays = [np.load(Path(out)/s['file']) for s in m['shards'] if s['split'] == split]
    assert all(a.dtype == np.uint16 for a in arrays)
    toks = np.concatenate(arrays) if arrays else np.zeros(0, np.uint16)
    assert len(toks) == m['tokens'][split]
    starts = list(np.flatnonzero(toks == EOT)) + [len(toks)]
    assert not len(toks) or starts[0] == 0  # every split starts with a document's EOT
    enc = get_encoding()
    return [enc.decode(toks[a + 1:b].tolist()) for a, b in zip(starts, starts[1:])]

@pytest.fixture(scope='module')
def docs(): return sample_docs(900)

@pytest.fixture(scope='module')
def reference(tmp_path_factory, docs):
    "An uninterrupted run on a JSON-lines file: (source path, output folder, manifest)."
    d = tmp_path_factory.mktemp('ref')
    src = write_jsonl(d/'docs.jsonl', docs)
    m = prepare(str(src), d/'out', shard_tokens=20_000, workers=2)
    return src, d/'out', m

def test_roundtrip_cli(tmp_path, docs):
    "Acceptance 3: the CLI with --shard-tokens 100000 --workers 2; the shards decode to exactly the source documents."
    src = write_jsonl(tmp_path/'docs.jsonl', docs)
    r = run_cmd(PREPARE, '--source', src, '--out', tmp_path/'out', '--shard-tokens', 100000, '--workers', 2, check=True)
    assert 'prepared' in r.stdout
    m = json.loads((tmp_path/'out'/MANIFEST).read_text())
    val, train = decode_split(tmp_path/'out', 'val'), decode_split(tmp_path/'out', 'train')
    assert val + train == docs                       # every document, in order, exactly once
    assert len(val) == m['documents']['val'] > 0 and len(train) == m['documents']['train'] > 0
    assert m['tokens']['val'] >= m['val_tokens']     # val is whole documents up to its budget
    for split in ('train', 'val'):
        sizes = [s['tokens'] for s in m['shards'] if s['split'] == split]
        assert all(n == 100_000 for n in sizes[:-1]) and 0 < sizes[-1] <= 100_000
    assert len([s for s in m['shards'] if s['split'] == 'train']) >= 2  # documents span consecutive train shards
    assert sorted(p.name for p in (tmp_path/'out').iterdir()) == sorted([MANIFEST] + [s['file'] for s in m['shards']])

def test_worker_count_invariance(tmp_path, reference):
    "The same bytes whatever the number of workers (1, 3) as the 2-worker reference."
    src, out, m = reference
    for w in (1, 3):
        mw = prepare(str(src), tmp_path/f'w{w}', shard_tokens=20_000, workers=w)
        assert mw == m

SPAWN_SCRIPT = """
import multiprocessing as mp, sys
from gpt2_nb.data import prepare
if __name__ == '__main__':
    mp.set_start_method('spawn')
    prepare(sys.argv[1], sys.argv[2], shard_tokens=20_000, workers=2)
    print('start method', mp.get_start_method())
"""

def test_spawn_start_method(tmp_path, reference):
    "Under `spawn` (the default on macOS and Windows) the pool works and writes the same shards."
    src, out, m = reference
    (tmp_path/'spawn_run.py').write_text(SPAWN_SCRIPT)
    r = run_cmd(PY, tmp_path/'spawn_run.py', src, tmp_path/'out', check=True)
    assert 'start method spawn' in r.stdout
    assert shard_shas(tmp_path/'out') == shard_shas(out)

SLOW_SCRIPT = """
import sys, time
import gpt2_nb.data as data
write = data.write_shard
def slow_write(*args, **kwargs):
    info = write(*args, **kwargs)
    time.sleep(0.3)  # give the test time to kill the job between shards
    return info
data.write_shard = slow_write
if __name__ == '__main__': data.prepare_cli(sys.argv[1:])
"""

def test_sigkill_and_rerun(tmp_path, reference):
    "Acceptance 4: SIGKILL a prepare after its first shard; the rerun's shards are sha256-identical to an uninterrupted run's."
    src, ref_out, m = reference
    out = tmp_path/'out'
    (tmp_path/'slow_prepare.py').write_text(SLOW_SCRIPT)
    args = ['--source', str(src), '--out', str(out), '--shard-tokens', '20000', '--workers', '2']
    env = {**os.environ, 'HF_HUB_OFFLINE': '1'}; env.pop('IN_TEST', None)
    p = subprocess.Popen([PY, str(tmp_path/'slow_prepare.py'), *args], env=env, start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not list(out.glob('*_000000.npy')):
            assert p.poll() is None, 'prepare ended before writing a shard'
            assert time.time() < deadline, 'no shard after 120 s'
            time.sleep(0.02)
        os.killpg(p.pid, signal.SIGKILL)  # the job and its pool workers, as a crash would
    finally:
        p.wait()
    gone_by = time.time() + 30  # the pool workers die with it, but a busy machine may take a moment to end them:
    while time.time() < gone_by:  # until then they hold the folder's lock, and the rerun would rightly refuse
        try: os.killpg(p.pid, 0); time.sleep(0.05)
        except ProcessLookupError: break
    assert p.returncode == -signal.SIGKILL
    assert not (out/MANIFEST).exists()
    written = [f for f in out.glob('*.npy')]
    assert 0 < len(written) < len(m['shards'])  # killed mid-run
    assert prepare(str(src), out, shard_tokens=20_000, workers=2) == m  # the rerun finishes the job
    assert shard_shas(out) == shard_shas(ref_out)
    assert json.loads((out/MANIFEST).read_text()) == m
    assert sorted(p.name for p in out.iterdir()) == sorted([MANIFEST] + [s['file'] for s in m['shards']])
    # a rerun of the finished job says so and touches nothing
    mtimes = {f.name: f.stat().st_mtime_ns for f in out.iterdir()}
    r = run_cmd(PREPARE, *args, check=True)
    assert 'already done' in r.stdout
    assert {f.name: f.stat().st_mtime_ns for f in out.iterdir()} == mtimes

def test_rerun_repairs_damaged_shards(tmp_path, reference):
    "A missing shard, a truncated shard and a stray temporary file are all put right by a rerun."
    src, ref_out, m = reference
    out = tmp_path/'out'
    prepare(str(src), out, shard_tokens=20_000, workers=2)
    (out/'train_000001.npy').unlink()
    (out/'train_000002.npy').write_bytes((out/'train_000002.npy').read_bytes()[:500])
    (out/'.train_000003.npy.abcd.tmp').write_bytes(b'partial')
    assert prepare(str(src), out, shard_tokens=20_000, workers=1) == m
    assert sorted(p.name for p in out.iterdir()) == sorted([MANIFEST] + [s['file'] for s in m['shards']])

def test_tokenizer_offline():
    "Acceptance 2, in a fresh process with the Hub marked offline."
    r = run_cmd(PY, '-c', "from gpt2_nb.tokenizer import get_encoding; e=get_encoding(); print(e.encode('Hello world'), e.n_vocab)", check=True)
    assert r.stdout.strip() == '[15496, 995] 50257'

def cli_in_process(capsys, *args):
    "Run `gpt2nb_prepare` in this process (it starts in seconds less than a new Python that imports torch)."
    with pytest.raises(SystemExit) as e: prepare_cli([str(a) for a in args])
    out, err = capsys.readouterr()
    return SimpleNamespace(returncode=e.value.code, stdout=out, stderr=err)

def _bad_cases(tmp):
    "(name, CLI arguments, words the one-line error must contain) for each bad input."
    write_jsonl(tmp/'ok.jsonl', ['one', 'two', 'three'])
    (tmp/'empty.jsonl').write_text('')
    (tmp/'a_file').write_text('not a folder')
    (tmp/'bad.jsonl').write_text('{"text": "ok"}\n{"text": "ok"}\n{"text": broken}\n')
    import pyarrow as pa, pyarrow.parquet as pq
    pq.write_table(pa.table({'body': ['x']}), tmp/'body.parquet')
    return [
        ('empty source', ['--source', tmp/'empty.jsonl'], ['no documents']),
        ('empty folder', ['--source', tmp/'a_folder'], ['no .parquet, .jsonl or .txt files']),
        ('unknown column (jsonl)', ['--source', tmp/'ok.jsonl', '--text-column', 'content'], ["no text field 'content'", '--text-column']),
        ('unknown column (parquet)', ['--source', tmp/'body.parquet'], ["no column 'text'", '--text-column']),
        ('bad JSON line', ['--source', tmp/'bad.jsonl'], ['line 3', 'not valid JSON']),
        ('output under a file', ['--source', tmp/'ok.jsonl', '--out', tmp/'a_file'/'shards'], ['cannot create output folder', '--out']),
        ('output is a file', ['--source', tmp/'ok.jsonl', '--out', tmp/'a_file'], ['is a file', '--out']),
        ('zero shard tokens', ['--source', tmp/'ok.jsonl', '--shard-tokens', '0'], ['--shard-tokens', '>= 1']),
        ('negative val tokens', ['--source', tmp/'ok.jsonl', '--val-tokens', '-1'], ['--val-tokens', '>= 0']),
        ('zero workers', ['--source', tmp/'ok.jsonl', '--workers', '0'], ['--workers', '>= 1']),
        ('non-integer shard tokens', ['--source', tmp/'ok.jsonl', '--shard-tokens', 'many'], ['--shard-tokens', 'invalid int']),
    ]

def test_bad_inputs(tmp_path, capsys):
    "Acceptance 6 (prepare side): one line on stderr, exit 2, no traceback, no files written."
    (tmp_path/'a_folder').mkdir()
    cases = _bad_cases(tmp_path)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob('*'))
    for name, args, needles in cases:
        out = ['--out', tmp_path/'out'] if '--out' not in args else []
        r = cli_in_process(capsys, *args, *out)
        assert r.returncode == 2, (name, r.returncode, r.stderr)
        assert_one_line_error(r, *needles)
        assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob('*')) == before, name

def test_bad_inputs_console_script(tmp_path):
    "The installed console script, in a new process: a missing source, and the Hub while offline."
    cases = [(['--source', tmp_path/'nope.jsonl'], ['does not exist'], {}),
             (['--source', 'HuggingFaceTB/cosmopedia-100k'], ['hub cannot be reached', '--source'],
              {'HF_HUB_OFFLINE': '1', 'HF_HOME': str(tmp_path/'hf_home')})]  # an empty cache: nothing to fall back on
    for args, needles, env in cases:
        r = run_cmd(PREPARE, *args, '--out', tmp_path/'out', env=env)
        assert r.returncode == 2, (args, r.stderr)
        assert_one_line_error(r, *needles)
        assert not (tmp_path/'out').exists()

def test_bad_line_found_mid_job(tmp_path, capsys):
    "A bad line past the first piece is found by a worker: one-line error, and the shards written before it are removed."
    good = json.dumps({'text': 'x' * 1000}) + '\n'
    (tmp_path/'late.jsonl').write_text(good * 1200 + '{"text": 3}\n')  # line 1201 is past the first 1 MB piece
    r = cli_in_process(capsys, '--source', tmp_path/'late.jsonl', '--out', tmp_path/'out', '--workers', 2)
    assert r.returncode == 2
    assert_one_line_error(r, 'line 1201', "field 'text'", 'not text')
    assert not (tmp_path/'out').exists()  # bad input leaves no files behind (a crash instead keeps whole shards for the rerun)

@pytest.mark.skipif(os.geteuid() == 0, reason='root can write into read-only folders')
def test_read_only_output(tmp_path):
    ro = tmp_path/'ro'; ro.mkdir(); ro.chmod(0o500)
    write_jsonl(tmp_path/'ok.jsonl', ['one'])
    try: assert_one_line_error(run_cmd(PREPARE, '--source', tmp_path/'ok.jsonl', '--out', ro/'out'), '--out')
    finally: ro.chmod(0o700)
    assert list(ro.iterdir()) == []
