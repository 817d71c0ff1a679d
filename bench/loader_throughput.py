"""Batch production of `gpt2_nb.loader.TokenLoader` vs a training step: batches/s and tokens/s, and their ratio.

Writes ~10M random uint16 tokens as shards (np.save + manifest.json) in a temporary folder, times the shuffled train
loader and the sequential val loader at B=16,T=1024 and B=8,T=256, then times fp32 training steps of a tiny GPT-like
model (built here with torch alone, GPT-2's vocabulary) at the same T with 2048 tokens per step, on the same machine.
Training tokens/s hardly depends on B on a CPU, and the tiny model's output layer (50304 logits per token) dominates.
Both sides report their best timing (fastest loader chunk, fastest training step), so other processes on the machine
bias neither; the load average is printed too.

    python bench/loader_throughput.py [--tokens 10_000_000] [--seconds 2]
"""
import json, math, os, platform, tempfile, time
from datetime import date
from pathlib import Path

import numpy as np
import torch

from gpt2_nb.core import ArgumentParser
from gpt2_nb.loader import TokenLoader, write_shards
from gpt2_nb.model import GPT, GPTConfig
from gpt2_nb.precision import cpu_name

SMALL = dict(vocab_size=50304, block_size=1024, n_layer=2, n_head=2, n_embd=128)  # the model of the training-speed column

SHAPES = ((16, 1024), (8, 256))
H100_124M_TOKS = 0.5 * 989e12 / (6 * 124e6 + 12 * 12 * 1024 * 768)  # 50% MFU, bf16 dense peak, GPT-2 124M at T=1024


def random_shards(d, tokens, n_shards=10, seed=0):
    "Random uint16 token shards (10 train, 1 val) and their manifest, written as gpt2nb_prepare writes them."
    rng, per = np.random.default_rng(seed), tokens // n_shards
    write_shards(d, {split: [rng.integers(0, 50257, per, dtype=np.uint16) for _ in range(n)] for split, n in (('train', n_shards), ('val', 1))},
                 source='random')


def time_loader(loader, seconds, chunks=10):
    "Batches/s and tokens/s of `next_batch`: the best of `chunks` timings of about `seconds/chunks` each (robust to other load)."
    loader.next_batch()
    best, t_end = 0.0, time.perf_counter() + seconds
    for _ in range(chunks):
        n, t0 = 0, time.perf_counter()
        while (dt := time.perf_counter() - t0) < seconds / chunks:
            for _ in range(10): loader.next_batch()
            n += 10
        best = max(best, n / dt)
    return best, best * loader.batch_size * loader.seq_len


def time_training(loader, steps, **model_kw):
    "Tokens/s of fp32 forward + backward + AdamW steps of a small GPT on the loader's batches: the fastest of `steps` steps."
    torch.manual_seed(0)
    model = GPT(GPTConfig(**{**SMALL, **model_kw}))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    def step():
        t0 = time.perf_counter()
        x, y = loader.next_batch()
        _, loss = model(x, y)
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
        return time.perf_counter() - t0
    step(); step()  # warm-up: allocator and AdamW state
    return loader.batch_size * loader.seq_len / min(step() for _ in range(steps))


def main():
    p = ArgumentParser(prog='loader_throughput', description=__doc__.splitlines()[0])
    p.add_argument('--tokens', type=int, default=10_000_000, help='tokens in the synthetic train split')
    p.add_argument('--seconds', type=float, default=2.0, help='seconds to time each loader (best of 10 parts)')
    p.add_argument('--train-steps', type=int, default=5, help='timed training steps per shape (the fastest counts)')
    a = p.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    cpu = cpu_name()
    print(f"loader throughput, {date.today()}, {os.cpu_count()} CPUs ({cpu}), torch {torch.__version__}, numpy {np.__version__}, "
          f"load average {os.getloadavg()[0]:.1f} at start")
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        random_shards(d, a.tokens)
        t0 = time.perf_counter()
        TokenLoader(d, 'train', 16, 1024)
        print(f"{a.tokens:,} train tokens in 10 shards; opening and checking them: {1e3 * (time.perf_counter() - t0):.1f} ms")
        kw = dict(n_layer=2, n_head=2, n_embd=128)
        print(f"training: gpt2_nb.model.GPT {kw}, vocab 50304, fp32, AdamW, {torch.get_num_threads()} threads, "
              f"timed at 2048 tokens per step (B=2048//T) to keep memory and time small")
        print(f"{'B':>3} {'T':>5} | {'train batches/s':>15} {'train Mtok/s':>12} | {'val batches/s':>13} {'val Mtok/s':>10}"
              f" | {'training tok/s':>14} | {'loader/training':>15}")
        shuffled = {}
        for B, T in SHAPES:
            tb, tt = time_loader(TokenLoader(d, 'train', B, T), a.seconds)
            vb, vt = time_loader(TokenLoader(d, 'val', B, T), a.seconds)
            train_tps = time_training(TokenLoader(d, 'train', max(1, 2048 // T), T), a.train_steps, **kw)
            print(f"{B:>3} {T:>5} | {tb:>15,.0f} {tt / 1e6:>12.1f} | {vb:>13,.0f} {vt / 1e6:>10.1f}"
                  f" | {train_tps:>14,.0f} | {tt / train_tps:>14,.0f}x")
            shuffled[B, T] = tt
        print(f"load average {os.getloadavg()[0]:.1f} at end (above ~0.5 means other processes shared the CPUs: rerun when idle)")
        print(f"for scale: GPT-2 124M on one H100 at 50% MFU trains ~{H100_124M_TOKS / 1e3:,.0f}k tok/s (estimate, not measured); "
              f"the shuffled loader at B=16,T=1024 is {shuffled[SHAPES[0]] / H100_124M_TOKS:,.0f}x that, on one core")


if __name__ == '__main__': main()
