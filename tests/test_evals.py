"HellaSwag-style evaluation: scores against transformers, gpt2nb_eval, --hellaswag in training (1 and 2 processes), bad inputs."
import json, struct
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from conftest import run_cmd, assert_one_line_error, PY, REPO, train_args, make_shards
from gpt2_nb.core import seed_everything
from gpt2_nb.evals import load_hellaswag, ending_logprobs, evaluate_hellaswag, pick, pick_per_byte, ending_bytes
from gpt2_nb.model import GPT, GPTConfig
from gpt2_nb.tokenizer import get_encoding
from gpt2_nb.loop import TrainConfig
from gpt2_nb.train import train
from gpt2_nb.runs import read_log
from gpt2_nb.hf import to_hf

KJV = REPO/'data'/'hellaswag_kjv.jsonl'
SHORT = ['--max-steps', '4', '--batch-size', '2', '--eval-every', '2', '--eval-batches', '1', '--sample-tokens', '4',
         '--log-every', '100', '--ckpt-every', '100']

def write_items(path, *items):
    Path(path).write_text(''.join((i if isinstance(i, str) else json.dumps(i)) + '\n' for i in items))
    return path

def hellaswag_records(out):
    return [r for r in read_log(Path(out)/'log.jsonl') if 'hellaswag_acc' in r]


def test_logprobs_equal_transformers():
    "Each ending's summed log-probability equals GPT2LMHeadModel's on the same weights (context cut to the window)."
    transformers = pytest.importorskip('transformers')
    transformers.logging.set_verbosity_error()
    seed_everything(0)
    ours = GPT(GPTConfig(block_size=48, vocab_size=50257, n_layer=2, n_head=4, n_embd=64)).eval()
    hf, enc, items = to_hf(ours).eval(), get_encoding(), load_hellaswag(KJV, limit=12)
    got = ending_logprobs(ours, items, enc, batch_size=7)
    worst, cut = 0.0, 0
    for item, scores in zip(items, got):
        ctx = enc.encode_ordinary(item['ctx'])
        for (s, n), e in zip(scores, item['endings']):
            end = enc.encode_ordinary(' ' + e)
            ids = (ctx + end)[-49:]  # the window: 48 inputs and one more target
            cut += len(ctx + end) > 49
            assert n == min(len(end), len(ids) - 1)
            t = torch.tensor([ids])
            with torch.no_grad(): logp = F.log_softmax(hf(t[:, :-1]).logits[0].double(), -1)  # predicts t[0, 1:]
            ref = logp[-n:].gather(1, t[0, -n:, None]).sum().item()
            worst = max(worst, abs(s - ref))
    assert worst < 1e-4, worst
    assert cut > 0  # some rows were longer than the window


def test_pick_and_counts():
    assert pick([(-6.0, 2), (-9.0, 6)]) == (0, 1)
    seed_everything(0)
    m = GPT(GPTConfig(block_size=128, vocab_size=50257, n_layer=1, n_head=2, n_embd=32)).eval()
    items = load_hellaswag(KJV, limit=30)
    r = evaluate_hellaswag(m, items)
    scores = ending_logprobs(m, items)
    assert r['correct'] == sum(pick(s)[0] == it['label'] for s, it in zip(scores, items))
    assert r['correct_norm'] == sum(pick(s)[1] == it['label'] for s, it in zip(scores, items))
    assert r['correct_norm_bytes'] == sum(pick_per_byte(s, ending_bytes(it)) == it['label'] for s, it in zip(scores, items))
    assert r['acc_norm_bytes'] == r['correct_norm_bytes'] / 30
    assert (r['n'], r['acc']) == (30, r['correct'] / 30)


@pytest.fixture(scope='module')
def ckpt(tmp_path_factory):
    out = tmp_path_factory.mktemp('run')
    data = make_shards(tmp_path_factory.mktemp('data'))
    train(TrainConfig(data=str(data), out=str(out), n_layer=1, n_head=2, n_embd=32, seq_len=32, max_steps=2, batch_size=2,
                      eval_every=2, eval_batches=1, sample_tokens=4, device='cpu'), say=lambda *a: None)
    return out/'ckpt.pt'


def test_eval_cli(ckpt, tmp_path):
    r = run_cmd('gpt2nb_eval', '--ckpt', ckpt, '--hellaswag', KJV, '--limit', 24, '--out', tmp_path/'r.json', check=True)
    res = json.loads((tmp_path/'r.json').read_text())
    assert res['n'] == 24 and 0 <= res['acc'] <= 1
    lines = r.stdout.splitlines()
    assert lines[0].startswith(f"scored: {ckpt} (step 2) on ") and lines[0].endswith(', 24 items'), r.stdout  # what was scored
    assert lines[1].startswith(f"acc: {res['acc']:.4f} ({res['correct']} right") and lines[2].startswith(f"acc_norm: {res['acc_norm']:.4f} ("), r.stdout
    assert lines[3].startswith(f"acc_norm_bytes: {res['acc_norm_bytes']:.4f} ({res['correct_norm_bytes']} right"), r.stdout
    assert lines[4].startswith(f"chance: 0.2500") and res['chance'] == 0.25, r.stdout  # four endings an item
    # the same weights through a Hugging Face folder (--hf) score the same
    pytest.importorskip('transformers')
    from gpt2_nb.checkpoint import load_model
    to_hf(load_model(ckpt)).save_pretrained(tmp_path/'hf')
    r2 = run_cmd('gpt2nb_eval', '--hf', tmp_path/'hf', '--hellaswag', KJV, '--limit', 24, check=True)
    assert r2.stdout.splitlines()[1:4] == r.stdout.splitlines()[1:4]


GOOD = dict(ctx='In the beginning', endings=['God created', 'a cat sat'], label=0)
BAD_FILES = {
    'missing field': ([dict(ctx='x', label=0)], "no field 'endings'"),
    'label out of range': ([GOOD, dict(GOOD, label=2)], 'out of range'),
    'empty file': ([], 'holds no items'),
    'not json': ([GOOD, '{"ctx": '], 'not valid json'),
    'unlabelled': ([dict(GOOD, label='')], 'not an index'),
}

@pytest.mark.parametrize('name', BAD_FILES)
def test_eval_bad_items(ckpt, tmp_path, name):
    items, words = BAD_FILES[name]
    f = write_items(tmp_path/'items.jsonl', *items)
    r = run_cmd('gpt2nb_eval', '--ckpt', ckpt, '--hellaswag', f, '--out', tmp_path/'r.json')
    assert_one_line_error(r, words)
    assert r.returncode == 2 and not (tmp_path/'r.json').exists()


@pytest.mark.parametrize('args,words', [
    (['--hf', 'x'], 'both name a model'),
    (['--limit', '0'], '--limit must be at least 1'),
    (['--hellaswag', 'nowhere/items.jsonl'], 'no file'),
    (['--out', 'no/such/folder/r.json'], 'cannot write --out'),
])
def test_eval_bad_flags(ckpt, args, words):
    assert_one_line_error(run_cmd('gpt2nb_eval', '--ckpt', ckpt, '--hellaswag', KJV, *args), words)


def test_eval_hub_offline(ckpt):
    "Offline, a Hub name gives one line saying so and how to pass a local file."
    assert_one_line_error(run_cmd('gpt2nb_eval', '--ckpt', ckpt, '--hellaswag', 'Rowan/hellaswag'), 'cannot be reached', '.jsonl')


def test_from_pretrained_offline():
    r = run_cmd(PY, '-c', "from gpt2_nb.core import run_cli\nfrom gpt2_nb.hf import from_pretrained\nrun_cli(from_pretrained, 'gpt2')")
    assert_one_line_error(r, "cannot load 'gpt2'", 'save_pretrained')


def png_width(path): return struct.unpack('>I', Path(path).read_bytes()[16:20])[0]

def test_train_with_hellaswag(data, tmp_path):
    "--hellaswag logs records at 0, every N steps and the end, draws the panel; 2 DDP ranks give the same accuracies."
    items = write_items(tmp_path/'items.jsonl', *map(json.dumps, load_hellaswag(KJV, limit=30)))
    args = train_args(data, tmp_path/'one', *SHORT, '--hellaswag', items, '--hellaswag-every', '3')
    run_cmd(PY, *args, check=True)
    one = hellaswag_records(tmp_path/'one')
    assert [r['step'] for r in one] == [0, 3, 4]
    assert set(one[0]) == {'step', 'hellaswag_acc', 'hellaswag_acc_norm', 'hellaswag_acc_norm_bytes'}
    assert png_width(tmp_path/'one'/'loss.png') == 740  # two panels (one panel is 700 px wide)
    cfg = json.loads((tmp_path/'one'/'config.json').read_text())['train']
    assert (cfg['hellaswag'], cfg['hellaswag_every']) == (str(items), 3)
    two_args = train_args(data, tmp_path/'two', *SHORT, '--hellaswag', items, '--hellaswag-every', '3', '--total-batch', '128')
    run_cmd('torchrun', '--standalone', '--nproc_per_node=2', *two_args, check=True)
    two = hellaswag_records(tmp_path/'two')
    assert [r['step'] for r in two] == [0, 3, 4]
    assert two[0] == one[0]  # the same initial weights: the same accuracies, from half the items on each rank


@pytest.mark.parametrize('extra,words', [
    (['--hellaswag', 'missing.jsonl'], 'no file'),
    (['--hellaswag-every', '5'], '--hellaswag-every goes with --hellaswag'),
])
def test_train_hellaswag_bad(data, tmp_path, extra, words):
    r = run_cmd(PY, *train_args(data, tmp_path/'run', *SHORT, *extra))
    assert_one_line_error(r, words)
    assert not (tmp_path/'run').exists()  # nothing written
