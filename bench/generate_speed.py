"""Generation speed: gpt2_nb's KV-cached `generate_cached` against transformers' `GPT2LMHeadModel.generate` (its default cache).

GPT-2's 124M shape with random weights (the same weights in both: `to_hf`), greedy, a prompt of 64 tokens and 256 new
tokens, batch 1 and 8, float32 and bfloat16 weights; the runs interleaved round-robin (`--repeats` rounds), the best
time of each kept. Also measured: the machine's memory bandwidth (a large copy), and from it how close each run gets
to the bound of reading the weights and the cache once per token.

    python bench/generate_speed.py [--repeats 3] [--new 256] [--prompt 64] [--out bench/results/NAME]
"""
import json, os, platform, time
from datetime import date
from pathlib import Path

import torch

from gpt2_nb.core import ArgumentParser
from gpt2_nb.generate import generate_cached
from gpt2_nb.hf import to_hf
from gpt2_nb.model import GPT, GPTConfig
from gpt2_nb.precision import cpu_name


def bandwidth_gbs(mib=512, n=5):
    "Memory bandwidth in GB/s: bytes read plus written by the fastest of `n` copies of a `mib` MiB tensor."
    a = torch.ones(mib << 18); b = torch.empty_like(a); b.copy_(a)
    best = min(_timed(lambda: b.copy_(a)) for _ in range(n))
    return 2 * a.nbytes / best / 1e9


def _timed(f):
    t = time.perf_counter(); f(); return time.perf_counter() - t


def greedy(impl, m, prompt, n):
    "`n` greedy tokens after `prompt` (B, T): ours (`generate_cached`) or transformers' `generate`, the same call for both."
    with torch.no_grad():
        if impl == 'ours': return generate_cached(m, prompt, n, temperature=0)
        return m.generate(prompt, max_new_tokens=n, min_new_tokens=n, do_sample=False,
                          attention_mask=torch.ones_like(prompt), pad_token_id=0)


def bytes_per_run(cfg, n_params, B, prompt, new, size):
    "Bytes a cached generation must read: the weights once per token, and each step's cache (keys and values so far)."
    cache = sum(2 * cfg.n_layer * (prompt + i) * cfg.n_embd * size * B for i in range(new))
    return n_params * size * new + cache


def main():
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--repeats', type=int, default=3); p.add_argument('--new', type=int, default=256)
    p.add_argument('--prompt', type=int, default=64); p.add_argument('--out', default=None)
    a = p.parse_args()
    torch.manual_seed(0)
    cfg = GPTConfig.from_preset('gpt2')
    base = GPT(cfg).eval()
    n_params = sum(t.numel() for t in base.parameters())
    models = {}
    for dt in ('float32', 'bfloat16'):
        ours = GPT(cfg).eval(); ours.load_state_dict(base.state_dict()); ours.to(getattr(torch, dt))
        models[dt] = dict(ours=ours, transformers=to_hf(base).eval().to(getattr(torch, dt)))
    gbs = bandwidth_gbs()
    head = (f"generation speed, {date.today()}, {cpu_name()} ({os.cpu_count()} CPUs, {torch.get_num_threads()} threads), "
            f"torch {torch.__version__}, {platform.machine()}; memory bandwidth (copy) {gbs:.1f} GB/s")
    print(head, flush=True)
    best, same = {}, {}
    for ms in models.values():  # warm-up: the first calls of each kernel pay for its setup
        for impl, m in ms.items(): greedy(impl, m, torch.zeros(8, 8, dtype=torch.long), 4)
    for r in range(a.repeats):
        for dt, ms in models.items():
            for B in (1, 8):
                prompt = torch.randint(0, 50257, (B, a.prompt), generator=torch.Generator().manual_seed(B))
                outs = {}
                for impl, m in ms.items():
                    t = time.perf_counter(); outs[impl] = greedy(impl, m, prompt, a.new); dt_s = time.perf_counter() - t
                    k = (dt, B, impl); best[k] = min(best.get(k, 1e9), dt_s)
                    print(f"  round {r + 1}: {dt:8} B={B} {impl:12} {B * a.new / dt_s:8.1f} tokens/s", flush=True)
                same[(dt, B)] = bool((outs['ours'] == outs['transformers']).all())
    rows = []
    for dt in models:
        size = torch.tensor([], dtype=getattr(torch, dt)).element_size()
        for B in (1, 8):
            o, h = best[(dt, B, 'ours')], best[(dt, B, 'transformers')]
            need = bytes_per_run(cfg, n_params, B, a.prompt, a.new, size)
            rows.append(dict(dtype=dt, batch=B, ours_tok_s=round(B * a.new / o, 1), transformers_tok_s=round(B * a.new / h, 1),
                             ratio=round(h / o, 2), ours_gb_s=round(need / o / 1e9, 1), of_bandwidth=round(need / o / 1e9 / gbs, 2),
                             same_tokens=same[(dt, B)]))
    lines = [head, f"GPT-2 124M shape, random weights, greedy, prompt {a.prompt}, {a.new} new tokens, best of {a.repeats} interleaved rounds",
             f"{'dtype':9} {'B':>2} {'ours tok/s':>10} {'transformers':>12} {'ratio':>6} {'weights+cache GB/s':>18} {'of copy bw':>10} same tokens"]
    lines += [f"{r['dtype']:9} {r['batch']:2} {r['ours_tok_s']:10.1f} {r['transformers_tok_s']:12.1f} {r['ratio']:6.2f} "
              f"{r['ours_gb_s']:18.1f} {r['of_bandwidth']:10.2f} {r['same_tokens']}" for r in rows]
    print('\n'.join(lines))
    if a.out:
        Path(a.out + '.txt').write_text('\n'.join(lines) + '\n')
        Path(a.out + '.json').write_text(json.dumps(dict(date=str(date.today()), cpu=cpu_name(), threads=torch.get_num_threads(),
                                                         torch=torch.__version__, bandwidth_gb_s=round(gbs, 1), prompt=a.prompt,
                                                         new=a.new, rows=rows), indent=1) + '\n')


if __name__ == '__main__':
    main()
