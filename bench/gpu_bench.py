"""Time short GPT-2 124M training steps (T=1024) on one GPU: the lecture's ladder, then fp32/tf32/bf16 x flash/naive x compile.

First the ladder of build-nanogpt's lecture, each rung adding one change to the one before (`ladder` in the JSON):
fp32 (naive attention, vocabulary 50257, AdamW without the fused kernel) -> + TF32 -> + bf16 autocast -> + torch.compile
-> + flash attention -> + vocabulary padded to 50304 -> + fused AdamW, with each rung's speed-up over the first.
Then the precision and attention experiments: every combination of precision, attention and compile (`results`).
Each configuration builds the model, runs a few warm-up steps (the first one compiles) and times `--steps` optimizer
steps of one micro-batch each, through the training loop's own `train_step`. Tokens are
random ids (the speed of a step does not depend on them). Results — tokens/s, ms/step, MFU, peak memory, compile time —
go to bench/results/gpu_<date>.json, rewritten after every configuration so a timeout keeps what was measured.
Configurations that would overrun `--budget-s` are recorded as skipped; an out-of-memory one as such.

    PYTHONPATH=. python3 bench/gpu_bench.py               # on the GPU machine (bench/gpu.sh does this)
    PYTHONPATH=. python3 bench/gpu_bench.py --smoke       # tiny sizes on whatever device there is, to check the script

Needs only torch, numpy and tiktoken (no fastcore, datasets or network).
"""
import argparse, datetime, gc, json, os, platform, sys, tempfile, time
from pathlib import Path

import torch

from gpt2_nb.model import GPT, GPTConfig, configure_optimizers
from gpt2_nb.speed import mfu, flops_per_token
from gpt2_nb.precision import get_device, set_precision, device_name
from gpt2_nb.loop import TrainConfig, train_step
from gpt2_nb.runs import read_log
from gpt2_nb.bench import RandomTokens
from gpt2_nb.train import train

# The lecture's ladder: each rung adds one change to the rung before (build-nanogpt's order).
BASE = dict(precision='fp32', attention='naive', compiled=False, vocab_multiple=1, fused=False)
LADDER = [('fp32', {}), ('+ TF32', dict(precision='tf32')), ('+ bf16 autocast', dict(precision='bf16')),
          ('+ torch.compile', dict(compiled=True)), ('+ flash attention', dict(attention='flash')),
          ('+ vocab 50304', dict(vocab_multiple=64)), ('+ fused AdamW', dict(fused=True))]

def ladder_configs():
    "(rung name, the full configuration of that rung): the changes accumulate."
    cfg, out = dict(BASE), []
    for name, change in LADDER:
        cfg = {**cfg, **change}
        out.append((name, dict(cfg)))
    return out

# The precision and attention experiments: the headline configuration first, then the cheap eager ones, then the other
# compiled ones (each compile costs ~a minute).
ORDER = [('bf16', 'flash', True), ('bf16', 'flash', False), ('tf32', 'flash', False), ('fp32', 'flash', False),
         ('bf16', 'naive', False), ('tf32', 'naive', False), ('fp32', 'naive', False), ('tf32', 'flash', True),
         ('bf16', 'naive', True), ('fp32', 'flash', True), ('tf32', 'naive', True), ('fp32', 'naive', True)]


def _params(mc):
    "Parameter count without allocating the weights."
    with torch.device('meta'): return GPT(mc).num_params()


def sync(device):
    if device.type == 'cuda': torch.cuda.synchronize()


def free(device):
    "Drop compiled graphs and cached memory between configurations."
    torch._dynamo.reset(); gc.collect()
    if device.type == 'cuda': torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats()


def time_config(precision, attention, compiled, device, model_kw, batch_size, seq_len, warmup, steps, vocab_multiple=64, fused=None):
    "Build, warm up and time one configuration; return its measurements."
    free(device)
    torch.manual_seed(0)
    mc = GPTConfig.from_preset(model_kw.get('preset', 'gpt2'), block_size=seq_len, attention=attention, vocab_multiple=vocab_multiple,
                               **{k: v for k, v in model_kw.items() if k != 'preset'})
    with torch.device(device): raw = GPT(mc)  # initialise on the device: much faster than on the CPU for 124M
    opt = configure_optimizers(raw, weight_decay=0.1, lr=6e-4, device_type=device.type, fused=fused)
    autocast = set_precision(precision, device)
    model = torch.compile(raw) if compiled else raw
    batches = RandomTokens(50257, batch_size, seq_len)

    def step(): return train_step(model, opt, batches, 1, autocast, device, lr=6e-4, grad_clip=1.0, step=1)[0]

    t0 = time.perf_counter()
    for _ in range(warmup): loss = step()
    sync(device); warm_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(steps): loss = step()
    sync(device); dt = (time.perf_counter() - t0) / steps
    tps = batch_size * seq_len / dt
    name = device_name(device)
    res = dict(precision=precision, attention=attention, compile=compiled, vocab=mc.padded_vocab_size, fused_adamw=opt.defaults['fused'],
               tokens_per_sec=round(tps, 1), ms_per_step=round(dt * 1e3, 2),
               mfu=mfu(tps, mc, name, precision, seq_len), warmup_s=round(warm_s, 1), loss=round(loss, 4),
               peak_mem_gib=round(torch.cuda.max_memory_allocated(device) / 2**30, 2) if device.type == 'cuda' else None)
    del model, raw, opt
    return res


def cli_check(device, model_kw, data_dir, out_dir, precision='bf16', compiled=True, total_batch=524288, batch_size=16, seq_len=1024, steps=2):
    "The GPU configuration through the real training loop and run folder (synthetic shards): a couple of full steps."
    import numpy as np
    from gpt2_nb.loader import write_shards
    rng, n = np.random.default_rng(0), total_batch * (steps + 1) + 1
    write_shards(data_dir, {split: [rng.integers(0, 50257, k).astype(np.uint16)]
                            for split, k in (('train', n), ('val', batch_size * (seq_len + 1) * 2 + 1))}, source='random')
    free(device)
    sizes = {k: v for k, v in model_kw.items() if k != 'preset'}
    cfg = TrainConfig(data=str(data_dir), out=str(out_dir), preset=model_kw.get('preset', 'gpt2'), total_batch=total_batch,
                      batch_size=batch_size, seq_len=seq_len, max_steps=steps, warmup_steps=1, lr=6e-4, eval_every=steps,
                      eval_batches=2, ckpt_every=steps, log_every=1, sample_tokens=16, precision=precision, compile=compiled,
                      device=device.type, **sizes)
    t0 = time.time()
    res = train(cfg)
    recs = [r for r in read_log(out_dir/'log.jsonl') if 'loss' in r]
    return dict(args=f"--preset {cfg.preset} --total-batch {total_batch} --batch-size {batch_size} --seq-len {seq_len} "
                     f"--precision {precision}{' --compile' if compiled else ''} --max-steps {steps}",
                wall_s=round(time.time() - t0, 1), steps=[{k: r.get(k) for k in ('step', 'loss', 'grad_norm', 'tokens_per_sec', 'dt_ms', 'mfu')} for r in recs],
                last_val_loss=res.get('last_val_loss'))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--smoke', action='store_true', help='tiny model and sizes, 2 timed steps: checks the script end to end anywhere')
    p.add_argument('--device', default='auto', help='auto, cuda or cpu')
    p.add_argument('--batch-size', type=int, default=16)
    p.add_argument('--seq-len', type=int, default=1024)
    p.add_argument('--warmup', type=int, default=3, help='untimed steps first (the first compiles)')
    p.add_argument('--steps', type=int, default=10, help='timed steps')
    p.add_argument('--budget-s', type=float, default=480, help='skip configurations that would end after this many seconds')
    p.add_argument('--no-ladder', action='store_true', help="skip the lecture's ladder")
    p.add_argument('--compile-cost-s', type=float, default=75, help='budget to assume for a compiled configuration')
    p.add_argument('--no-cli-check', action='store_true', help='skip the run of the real training loop')
    p.add_argument('--extra-batch-sizes', default='32', help='if time is left: the headline configuration at these micro-batch sizes too')
    p.add_argument('--out', default=None, help='JSON to write (default bench/results/gpu_<date>.json; with --smoke a file in the temp folder)')
    a = p.parse_args(argv)
    t_start = time.time()
    device = get_device(a.device)
    model_kw = dict(preset='gpt2')
    if a.smoke:
        model_kw = dict(preset='gpt2', n_layer=2, n_head=4, n_embd=64)
        a.batch_size, a.seq_len, a.warmup, a.steps = 2, 64, 1, 2
    today = datetime.date.today().isoformat()
    out = Path(a.out or (Path(tempfile.gettempdir())/f'gpt2nb_gpu_smoke_{today}.json' if a.smoke else f'bench/results/gpu_{today}.json'))
    out.parent.mkdir(parents=True, exist_ok=True)
    name = device_name(device)
    mc = GPTConfig.from_preset(model_kw['preset'], block_size=a.seq_len, **{k: v for k, v in model_kw.items() if k != 'preset'})
    report = dict(date=today, device=name, device_type=device.type, torch=torch.__version__,
                  cuda=torch.version.cuda, python=platform.python_version(), smoke=a.smoke,
                  model=dict(preset=model_kw['preset'], n_layer=mc.n_layer, n_head=mc.n_head, n_embd=mc.n_embd, vocab_size=mc.vocab_size,
                             params=_params(mc), flops_per_token=flops_per_token(mc, a.seq_len)),
                  batch_size=a.batch_size, seq_len=a.seq_len, tokens_per_step=a.batch_size * a.seq_len, warmup_steps=a.warmup,
                  timed_steps=a.steps, ladder=[], results=[], cli_check=None)

    def write():
        report['wall_s'] = round(time.time() - t_start, 1)
        tmp = out.with_suffix('.json.tmp'); tmp.write_text(json.dumps(report, indent=2)); os.replace(tmp, out)

    def run_cli_check():
        if a.no_cli_check: return
        if not a.smoke and time.time() - t_start + a.compile_cost_s > a.budget_s:
            report['cli_check'] = dict(skipped='time budget'); return
        free(device)
        with tempfile.TemporaryDirectory() as d:
            try:
                kw = dict(total_batch=2 * 2 * 64, batch_size=2, seq_len=64, compiled=False) if a.smoke else {}
                report['cli_check'] = cli_check(device, model_kw, Path(d)/'data', Path(d)/'run', **kw)
            except Exception as e:
                report['cli_check'] = dict(error=f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}")
        write()
        print('cli check:', json.dumps(report['cli_check'])[:600], flush=True)

    print(f"{name} | torch {torch.__version__} | B={a.batch_size} T={a.seq_len} | writing {out}", flush=True)

    def measure(precision, attention, compiled, batch_size=None, **kw):
        "`time_config` with its failure recorded instead of raised: one broken configuration must not lose the others."
        t0 = time.time()
        try: r = time_config(precision, attention, compiled, device, model_kw, batch_size or a.batch_size, a.seq_len, a.warmup, a.steps, **kw)
        except torch.cuda.OutOfMemoryError: r = dict(precision=precision, attention=attention, compile=compiled, error='out of memory')
        except Exception as e:
            r = dict(precision=precision, attention=attention, compile=compiled, error=f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}")
        r['config_s'] = round(time.time() - t0, 1)
        return r

    def show(tag, r, tail):
        if 'error' in r: print(f"{tag} error: {r['error']}", flush=True); return
        m = f"{r['mfu']:.1%}" if r.get('mfu') is not None else '-'
        print(f"{tag} {r['tokens_per_sec']:>12,.0f} tok/s {r['ms_per_step']:>9.1f} ms/step  MFU {m:>6}  peak {r['peak_mem_gib']} GiB  {tail}", flush=True)

    eager_cost = None
    for rung, c in ([] if a.no_ladder else ladder_configs()):
        elapsed = time.time() - t_start
        compiled = c['compiled'] and not (a.smoke and rung != '+ torch.compile')  # smoke: compile once, on the CPU that takes a minute
        row = dict(step=rung, **{k: v for k, v in c.items() if k != 'compiled'}, compile=compiled)
        if not a.smoke and elapsed + (a.compile_cost_s if compiled else (eager_cost or 30)) > a.budget_s:
            report['ladder'].append(dict(row, skipped=f"time budget ({elapsed:.0f} s used)")); write(); continue
        r = measure(c['precision'], c['attention'], compiled, vocab_multiple=c['vocab_multiple'], fused=c['fused'])
        row.update(r, step=rung)
        if not compiled and 'error' not in r: eager_cost = max(eager_cost or 0, row['config_s'])
        first = next((x for x in report['ladder'] if 'tokens_per_sec' in x), None)
        if 'tokens_per_sec' in row: row['speedup'] = round(row['tokens_per_sec'] / first['tokens_per_sec'], 2) if first else 1.0
        report['ladder'].append(row); write()
        show(f"{rung:18}", row, f"x{row.get('speedup')}")
    for i, (precision, attention, compiled) in enumerate(ORDER):
        if i == 1: run_cli_check()  # right after the headline configuration, whose compiled graphs it reuses from the cache
        elapsed = time.time() - t_start
        guess = a.compile_cost_s if compiled else (eager_cost or 30)
        tag = f"{precision:4} {attention:5} {'compiled' if compiled else 'eager':8}"
        if a.smoke and compiled and i > 0:  # on a CPU each compile takes a minute or more: one shows the path works
            report['results'].append(dict(precision=precision, attention=attention, compile=compiled, skipped='smoke: one compiled configuration only'))
            continue
        if not a.smoke and elapsed + guess > a.budget_s:
            report['results'].append(dict(precision=precision, attention=attention, compile=compiled, skipped=f"time budget ({elapsed:.0f} s used)"))
            print(f"{tag} skipped: {elapsed:.0f} s of {a.budget_s:.0f} used", flush=True); write(); continue
        r = measure(precision, attention, compiled)
        if not compiled and 'error' not in r: eager_cost = max(eager_cost or 0, r['config_s'])
        report['results'].append(r); write()
        show(tag, r, f"warm-up {r.get('warmup_s')} s  loss {r.get('loss')}")
    for bs in [int(b) for b in a.extra_batch_sizes.split(',') if b.strip()] if not a.smoke else []:
        if time.time() - t_start + a.compile_cost_s > a.budget_s: break
        r = measure('bf16', 'flash', True, batch_size=bs)
        r['batch_size'] = bs; report.setdefault('extra', []).append(r); write()
        print(f"bf16 flash compiled B={bs}: {r.get('tokens_per_sec', 0):,.0f} tok/s, MFU {r.get('mfu')}", flush=True)
    write()
    print(f"done in {time.time() - t_start:.0f} s: {out}", flush=True)


if __name__ == '__main__': main()
