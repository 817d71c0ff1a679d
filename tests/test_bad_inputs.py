"""Bad input, table-driven: every case exits non-zero with one line naming the problem, no traceback, and no new files.

Each case builds its inputs in a fresh folder, snapshots it, runs one CLI, and checks the folder afterwards."""
import hashlib, json, os, random, shutil, subprocess, sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import run_cmd, assert_one_line_error, PY

BIN = Path(PY).parent  # the console scripts installed beside this python
PREPARE, TRAIN, SAMPLE = [BIN/'gpt2nb_prepare'], [BIN/'gpt2nb_train'], [BIN/'gpt2nb_sample']
TINY = ['--n-layer', '1', '--n-head', '2', '--n-embd', '32', '--batch-size', '2', '--seq-len', '16',
        '--eval-every', '2', '--eval-batches', '1', '--sample-tokens', '4', '--log-every', '1', '--device', 'cpu']

@pytest.fixture(scope='module')
def base(tmp_path_factory):
    "A prepared data folder and a finished 2-step run, shared by the cases (each case copies what it changes)."
    root = tmp_path_factory.mktemp('base')
    docs = [{'text': f'Document {i} says hello to the number {i*i} and goes on a little while. ' * 3} for i in range(400)]
    (root/'docs.jsonl').write_text(''.join(json.dumps(d) + '\n' for d in docs))
    run_cmd(*PREPARE, '--source', root/'docs.jsonl', '--out', root/'data', '--shard-tokens', '4000', '--workers', '1', check=True)
    run_cmd(*TRAIN, '--data', root/'data', '--out', root/'run', *TINY, '--max-steps', '2', check=True)
    return root

def _files(d): return sorted(str(p.relative_to(d)) for p in Path(d).rglob('*'))

def _copy(base, w, *names):
    for n in names:
        s = base/n
        (shutil.copytree if s.is_dir() else shutil.copy)(s, w/n)

# Each case: (id, setup(base, w) -> argv, words the one-line message must contain)
def c_prep_missing(b, w): return [*PREPARE, '--source', w/'nope.jsonl', '--out', w/'out']
def c_prep_empty(b, w): (w/'e.jsonl').write_text(''); return [*PREPARE, '--source', w/'e.jsonl', '--out', w/'out']
def c_prep_empty_docs(b, w): (w/'e.jsonl').write_text('{"text": ""}\n' * 3); return [*PREPARE, '--source', w/'e.jsonl', '--out', w/'out']
def c_prep_column(b, w): _copy(b, w, 'docs.jsonl'); return [*PREPARE, '--source', w/'docs.jsonl', '--out', w/'out', '--text-column', 'body']
def c_prep_unwritable(b, w):
    _copy(b, w, 'docs.jsonl'); (w/'afile').write_text('x')
    return [*PREPARE, '--source', w/'docs.jsonl', '--out', w/'afile'/'out']
def c_prep_shard0(b, w): _copy(b, w, 'docs.jsonl'); return [*PREPARE, '--source', w/'docs.jsonl', '--out', w/'out', '--shard-tokens', '0']
def c_prep_workers0(b, w): _copy(b, w, 'docs.jsonl'); return [*PREPARE, '--source', w/'docs.jsonl', '--out', w/'out', '--workers', '0']
def c_prep_suffix(b, w): (w/'d.csv').write_text('text\nhello\n'); return [*PREPARE, '--source', w/'d.csv', '--out', w/'out']
def c_prep_not_utf8(b, w): (w/'d.txt').write_bytes(b'caf\xe9 au lait\n'); return [*PREPARE, '--source', w/'d.txt', '--out', w/'out']
def c_prep_bad_json(b, w): (w/'d.jsonl').write_text('{"text": "ok"}\n{"text": broken\n'); return [*PREPARE, '--source', w/'d.jsonl', '--out', w/'out']
def c_prep_hub(b, w): return [*PREPARE, '--source', 'HuggingFaceTB/cosmopedia-100k', '--out', w/'out']
def c_prep_bad_flag(b, w): return [*PREPARE, '--shard-tokens', 'many', '--out', w/'out']

def _train(w, *extra, steps='1', args=TINY):
    "A gpt2nb_train command on the case's copy of the data, into the case's run folder."
    return [*TRAIN, '--data', w/'data', '--out', w/'run', *args, '--max-steps', steps, *extra]
def c_train_no_data(b, w): return [*TRAIN, '--data', w/'missing', '--out', w/'run', *TINY, '--max-steps', '1']
def c_train_no_manifest(b, w):
    _copy(b, w, 'data'); (w/'data'/'manifest.json').unlink()
    return _train(w)
def c_train_bad_manifest(b, w):
    _copy(b, w, 'data'); (w/'data'/'manifest.json').write_text('{"shards": [')
    return _train(w)
def _first_shard(w, split='train'): return sorted((w/'data').glob(f'{split}_*.npy'))[0]
def c_train_truncated(b, w):
    _copy(b, w, 'data'); s = _first_shard(w); s.write_bytes(s.read_bytes()[:-100])
    return _train(w)
def c_train_dtype(b, w):
    _copy(b, w, 'data'); s = _first_shard(w); a = np.load(s); np.save(s, a.astype(np.int32))
    return _train(w)
def _edit_manifest(w, fn):
    "Change the copied data's manifest by `fn(manifest)`, as a hand edit would."
    m = json.loads((w/'data'/'manifest.json').read_text()); fn(m); (w/'data'/'manifest.json').write_text(json.dumps(m))
def c_train_token_range(b, w):  # a shard whose manifest agrees (sha256 too) but whose ids are not GPT-2's
    _copy(b, w, 'data'); s = _first_shard(w); a = np.load(s); a[5] = 60000; np.save(s, a)
    sha = hashlib.sha256(s.read_bytes()).hexdigest()
    _edit_manifest(w, lambda m: [e.update(sha256=sha) for e in m['shards'] if e['file'] == s.name])
    return _train(w)
def c_train_ids_changed(b, w):  # 200 token ids overwritten in place: header, size and manifest unchanged
    _copy(b, w, 'data'); s = _first_shard(w); a = np.load(s); a[100:300] = 7; np.save(s, a)
    return _train(w)
def c_train_entry_removed(b, w):
    _copy(b, w, 'data'); _edit_manifest(w, lambda m: m['shards'].pop())
    return _train(w)
def c_train_entry_type(b, w):
    _copy(b, w, 'data'); _edit_manifest(w, lambda m: m['shards'][0].update(tokens='4000'))
    return _train(w)
def c_train_rerun(b, w): _copy(b, w, 'data', 'run'); return _train(w, steps='4')  # the same command again, no --resume
def c_train_resume_restart(b, w): _copy(b, w, 'data', 'run'); return _train(w, '--resume', '--restart', steps='4')
def c_train_stop_at0(b, w): _copy(b, w, 'data'); return _train(w, '--stop-at', '0')
def c_train_clip(b, w): _copy(b, w, 'data'); return _train(w, '--grad-clip', '-1')
def c_train_min_lr(b, w): _copy(b, w, 'data'); return _train(w, '--min-lr-ratio', '2')
def c_train_damaged_log(b, w):
    _copy(b, w, 'data', 'run'); log = w/'run'/'log.jsonl'; lines = log.read_bytes().split(b'\n')
    log.write_bytes(b'\n'.join([lines[0], b'\xff\xfe not json', *lines[1:]]))
    return _train(w, '--resume', steps='4')
def c_train_in_use(b, w): _copy(b, w, 'data', 'run'); _hold(w/'run'); return _train(w, '--resume', steps='4')
def c_prep_in_use(b, w):
    _copy(b, w, 'docs.jsonl'); (w/'out').mkdir(); _hold(w/'out')
    return [*PREPARE, '--source', w/'docs.jsonl', '--out', w/'out']
def c_prep_damaged_parquet(b, w):
    import pyarrow as pa, pyarrow.parquet as pq
    pq.write_table(pa.table({'text': [f'document {i} ' * 50 for i in range(2000)]}), w/'d.parquet', row_group_size=200)
    raw = bytearray((w/'d.parquet').read_bytes()); raw[len(raw) // 3: len(raw) // 3 + 256] = random.Random(0).randbytes(256)  # mid-file
    (w/'d.parquet').write_bytes(bytes(raw))
    return [*PREPARE, '--source', w/'d.parquet', '--out', w/'out']
def c_train_total_batch(b, w): _copy(b, w, 'data'); return _train(w, '--total-batch', '100')
def c_train_batch0(b, w): _copy(b, w, 'data'); return _train(w, '--batch-size', '0')
def c_train_heads(b, w): _copy(b, w, 'data'); return _train(w, '--n-head', '3')
def c_train_lr0(b, w): _copy(b, w, 'data'); return _train(w, '--lr', '0')
def c_train_out_file(b, w): _copy(b, w, 'data'); (w/'run').write_text('x'); return _train(w)
def c_prep_val_negative(b, w): _copy(b, w, 'docs.jsonl'); return [*PREPARE, '--source', w/'docs.jsonl', '--out', w/'out', '--val-tokens', '-1']
def c_train_preset(b, w): return [*TRAIN, '--preset', 'gpt5', '--out', w/'run']
def c_train_no_ckpt(b, w): _copy(b, w, 'data'); return _train(w, '--resume', steps='4')
def c_train_other_config(b, w):
    _copy(b, w, 'data', 'run')
    args = [a if a != '32' else '64' for a in TINY]  # --n-embd 64: not the checkpoint's model
    return _train(w, '--resume', steps='4', args=args)
def c_train_corrupt_ckpt(b, w):
    _copy(b, w, 'data', 'run'); c = w/'run'/'ckpt.pt'; c.write_bytes(c.read_bytes()[: c.stat().st_size // 2])
    return _train(w, '--resume', steps='4')
def c_train_cuda(b, w):
    if torch.cuda.is_available(): pytest.skip('this machine has CUDA')
    _copy(b, w, 'data'); args = [a for a in TINY if a not in ('--device', 'cpu')]
    return _train(w, '--device', 'cuda', args=args)

class Boom:
    "A pickle payload: unpickling it would create a file."
    def __init__(self, path): self.path = path
    def __reduce__(self): return (os.system, (f'touch {self.path}',))
def c_sample_pickle(b, w):
    torch.save({'model': Boom(w/'PWNED')}, w/'evil.pt')
    return [*SAMPLE, '--ckpt', w/'evil.pt']
def c_train_pickle(b, w):
    _copy(b, w, 'data', 'run'); torch.save({'model': Boom(w/'PWNED')}, w/'run'/'ckpt.pt')
    return _train(w, '--resume', steps='4')
def c_dry_steps_and_epochs(b, w): _copy(b, w, 'data'); return _train(w, '--epochs', '2', '--dry-run')
def c_dry_too_little_data(b, w): _copy(b, w, 'data'); return [*TRAIN, '--data', w/'data', '--preset', 'gpt2', '--dry-run']
def c_dry_no_data(b, w): return [*TRAIN, '--data', w/'missing', '--preset', 'gpt2', '--dry-run']
def c_dry_too_big(b, w):
    _copy(b, w, 'data')
    return [*TRAIN, '--data', w/'data', '--out', w/'run', *TINY, '--n-layer', '200', '--n-embd', '4096', '--n-head', '32', '--dry-run']
def c_sample_missing(b, w): return [*SAMPLE, '--ckpt', w/'nope.pt']
def c_sample_corrupt(b, w): (w/'c.pt').write_bytes(b'not a checkpoint'); return [*SAMPLE, '--ckpt', w/'c.pt']
def c_sample_tokens(b, w): _copy(b, w, 'run'); return [*SAMPLE, '--ckpt', w/'run'/'ckpt.pt', '--max-new-tokens', '0']
def c_sample_num0(b, w): _copy(b, w, 'run'); return [*SAMPLE, '--ckpt', w/'run'/'ckpt.pt', '--num-samples', '0']
def c_sample_temp(b, w): _copy(b, w, 'run'); return [*SAMPLE, '--ckpt', w/'run'/'ckpt.pt', '--temperature', '-1']
def c_sample_top_k(b, w): _copy(b, w, 'run'); return [*SAMPLE, '--ckpt', w/'run'/'ckpt.pt', '--top-k', '-1']
def c_sample_top_k0(b, w): _copy(b, w, 'run'); return [*SAMPLE, '--ckpt', w/'run'/'ckpt.pt', '--top-k', '0']
def c_sample_top_p0(b, w): _copy(b, w, 'run'); return [*SAMPLE, '--ckpt', w/'run'/'ckpt.pt', '--top-p', '0']
def c_sample_top_p2(b, w): _copy(b, w, 'run'); return [*SAMPLE, '--ckpt', w/'run'/'ckpt.pt', '--top-p', '1.5']
def c_sample_temp_nan(b, w): _copy(b, w, 'run'); return [*SAMPLE, '--ckpt', w/'run'/'ckpt.pt', '--temperature', 'nan']
def c_sample_long_prompt(b, w): _copy(b, w, 'run'); return [*SAMPLE, '--ckpt', w/'run'/'ckpt.pt', '--prompt', 'word ' * 300]
def c_sample_no_prompt_file(b, w): _copy(b, w, 'run'); return [*SAMPLE, '--ckpt', w/'run'/'ckpt.pt', '--prompt-file', w/'none.txt']
def c_sample_binary_prompt(b, w):
    _copy(b, w, 'run'); (w/'p.bin').write_bytes(b'\xff\xfe\x00 binary')
    return [*SAMPLE, '--ckpt', w/'run'/'ckpt.pt', '--prompt-file', w/'p.bin']
def c_sample_two_prompts(b, w): _copy(b, w, 'run'); return [*SAMPLE, '--ckpt', w/'run'/'ckpt.pt', '--prompt', 'a', '--prompt-file', '-']
def c_sample_vocab(b, w):  # a checkpoint whose model has another vocabulary than GPT-2's
    from gpt2_nb.model import GPT, GPTConfig
    ck = torch.load(b/'run'/'ckpt.pt', weights_only=True); ck['model_config']['vocab_size'] = 1000
    ck['model'] = GPT(GPTConfig(**ck['model_config'])).state_dict(); torch.save(ck, w/'v.pt')
    return [*SAMPLE, '--ckpt', w/'v.pt']

HOLDERS = []  # processes holding a folder's lock for a case, stopped after it
def _hold(folder):
    "Another process holds `folder`'s lock (as a second job would) until the case ends."
    p = subprocess.Popen([sys.executable, '-c', f"from gpt2_nb.core import folder_lock; import time\n"
                          f"with folder_lock({str(folder)!r}): print('held', flush=True); time.sleep(600)"], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == 'held'
    HOLDERS.append(p)

@pytest.fixture(autouse=True)
def _stop_holders():
    yield
    while HOLDERS: p = HOLDERS.pop(); p.kill(); p.wait()

CASES = [
    ('prepare: missing source', c_prep_missing, ['does not exist']),
    ('prepare: empty source', c_prep_empty, ['no documents']),
    ('prepare: only empty documents', c_prep_empty_docs, ['empty']),
    ('prepare: unknown text column', c_prep_column, ['body', '--text-column']),
    ('prepare: unwritable output folder', c_prep_unwritable, ['--out']),
    ('prepare: --shard-tokens 0', c_prep_shard0, ['--shard-tokens']),
    ('prepare: --workers 0', c_prep_workers0, ['--workers']),
    ('prepare: unsupported file type', c_prep_suffix, ['.parquet, .jsonl or .txt']),
    ('prepare: non-UTF-8 text', c_prep_not_utf8, ['UTF-8']),
    ('prepare: malformed JSON line', c_prep_bad_json, ['line 2', 'JSON']),
    ('prepare: Hub unreachable', c_prep_hub, ['Hub']),
    ('prepare: non-integer flag', c_prep_bad_flag, ['--shard-tokens']),
    ('prepare: negative --val-tokens', c_prep_val_negative, ['--val-tokens']),
    ('prepare: output folder in use', c_prep_in_use, ['in use by another process']),
    ('prepare: damaged parquet', c_prep_damaged_parquet, ['d.parquet']),
    ('train: missing data folder', c_train_no_data, ['does not exist']),
    ('train: no manifest', c_train_no_manifest, ['manifest']),
    ('train: corrupt manifest', c_train_bad_manifest, ['manifest']),
    ('train: truncated shard', c_train_truncated, ['truncated']),
    ('train: wrong-dtype shard', c_train_dtype, ['uint16']),
    ('train: token ids out of range', c_train_token_range, ['60000']),
    ('train: token ids changed in place', c_train_ids_changed, ['sha256', 'gpt2nb_prepare']),
    ('train: manifest entry removed', c_train_entry_removed, ['manifest', 'gpt2nb_prepare']),
    ('train: manifest entry of the wrong type', c_train_entry_type, ['token count', 'gpt2nb_prepare']),
    ('train: the same command again', c_train_rerun, ['holds a run', '--resume', '--restart']),
    ('train: --resume and --restart', c_train_resume_restart, ['--resume', '--restart']),
    ('train: --stop-at 0', c_train_stop_at0, ['--stop-at']),
    ('train: --grad-clip -1', c_train_clip, ['--grad-clip']),
    ('train: --min-lr-ratio 2', c_train_min_lr, ['--min-lr-ratio']),
    ('train: damaged log', c_train_damaged_log, ['line 2', 'log']),
    ('train: run folder in use', c_train_in_use, ['in use by another process']),
    ('train: total batch does not divide', c_train_total_batch, ['--total-batch']),
    ('train: --batch-size 0', c_train_batch0, ['--batch-size']),
    ('train: n_embd not divisible by n_head', c_train_heads, ['n_head']),
    ('train: unknown preset', c_train_preset, ['gpt5']),
    ('train: --lr 0', c_train_lr0, ['--lr']),
    ('train: --out is a file', c_train_out_file, ['--out']),
    ('train: --resume without checkpoint', c_train_no_ckpt, ['--resume']),
    ('train: checkpoint of another config', c_train_other_config, ['n_embd']),
    ('train: corrupt checkpoint', c_train_corrupt_ckpt, ['ckpt.pt']),
    ('train: pickle payload in checkpoint', c_train_pickle, ['ckpt.pt']),
    ('train: --device cuda without CUDA', c_train_cuda, ['cuda']),
    ('dry run: --max-steps and --epochs', c_dry_steps_and_epochs, ['--max-steps', '--epochs']),
    ('dry run: data smaller than one step', c_dry_too_little_data, ['--total-batch']),
    ('dry run: missing data folder', c_dry_no_data, ['does not exist']),
    ('dry run: plan exceeds the device memory', c_dry_too_big, ['GiB per device']),
    ('sample: missing checkpoint', c_sample_missing, ['nope.pt']),
    ('sample: corrupt checkpoint', c_sample_corrupt, ['c.pt']),
    ('sample: pickle payload', c_sample_pickle, ['evil.pt']),
    ('sample: --max-new-tokens 0', c_sample_tokens, ['--max-new-tokens']),
    ('sample: --temperature -1', c_sample_temp, ['--temperature']),
    ('sample: --top-k -1', c_sample_top_k, ['--top-k']),
    ('sample: --top-k 0', c_sample_top_k0, ['--top-k', 'at least 1']),
    ('sample: --top-p 0', c_sample_top_p0, ['--top-p', '(0, 1]']),
    ('sample: --top-p 1.5', c_sample_top_p2, ['--top-p', '(0, 1]']),
    ('sample: --temperature nan', c_sample_temp_nan, ['--temperature']),
    ('sample: a prompt longer than the window', c_sample_long_prompt, ['prompt', 'window', 'shorten']),
    ('sample: a missing prompt file', c_sample_no_prompt_file, ['none.txt']),
    ('sample: a prompt file not UTF-8', c_sample_binary_prompt, ['p.bin', 'UTF-8']),
    ('sample: --prompt and --prompt-file', c_sample_two_prompts, ['--prompt-file', 'not both']),
    ('sample: another vocabulary', c_sample_vocab, ['1,000 tokens']),
    ('sample: --num-samples 0', c_sample_num0, ['--num-samples']),
]

@pytest.mark.parametrize('name,setup,words', CASES, ids=[c[0] for c in CASES])
def test_bad_input(base, tmp_path, name, setup, words):
    argv = setup(base, tmp_path)
    before = {p: (tmp_path/p).stat().st_mtime_ns for p in _files(tmp_path)}
    r = run_cmd(*argv, cwd=tmp_path, timeout=300)
    assert_one_line_error(r, *words)
    after = {p: (tmp_path/p).stat().st_mtime_ns for p in _files(tmp_path)}
    assert after == before, f"files changed: {set(after) ^ set(before) or [p for p in after if after[p] != before[p]]}"
    assert not (tmp_path/'PWNED').exists(), "the pickle payload ran"

def test_case_count():
    "The results page counts this table's cases: the count it gives is the table's."
    import re
    said = re.search(r'\| bad inputs and faults \| (\d+) bad inputs', (Path(__file__).parents[1]/'nbs'/'results.ipynb').read_text())
    assert said and int(said.group(1)) == len(CASES), (said and said.group(1), len(CASES))
