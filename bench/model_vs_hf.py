"""Training-step throughput of gpt2_nb's `GPT` against the machine's measured matmul peak and transformers' `GPT2LMHeadModel`.

One run reports, on the CPU it runs on:

1. The machine: CPU name and the flags that decide its speed (avx2, avx512f, avx512_bf16, amx_bf16), threads, torch.
2. The measured matmul peak: the best TFLOP/s of large square-ish products (2048³, 4096³, 4096×4096×1024) in fp32,
   in fp32 with oneDNN's bf16 inputs (`set_float32_matmul_precision('medium')`, our `tf32` on a CPU) and in bf16.
3. Each mode's training step — forward, loss, backward, fused AdamW; B=8 rows of T tokens — timed round-robin (one step
   of each mode in turn, so load on the machine slows all alike): median ms, tokens/s, and MFU = tokens/s × FLOPs per
   token / the peak of the mode's number format, with FLOPs per token = 6·(12·L·C² + Vp·C) + 12·L·C·T (the model
   lesson's `flops_per_token`: 6 per matmul weight and token, plus attention's two products).
   Ours: precision × eager/compiled × chunked/plain/fused loss, as `gpt2nb_train` runs them; the mode its defaults choose
   (`choose_settings`) is marked. Transformers: attn_implementation eager and sdpa, fp32 and bf16 autocast, as shipped.
   bf16 (and tf32) modes only where the CPU has bf16 units, unless --bf16 on.
4. The ratio of our default and of our fastest mode to transformers' fastest.
5. Where the time goes, from a profile of our default step and of transformers' fastest step: matrix products (GEMMs),
   the attention kernels, the optimizer and the rest; and the Amdahl ceiling — the step if all but the GEMMs and the
   attention kernels cost nothing — as tokens/s, MFU and ratio to transformers.

The allocator matters on a CPU: `gpt2nb_train` keeps freed memory in the process (`keep_freed_memory`, the precision
lesson), and so does this script unless `--allocator default`; both models run in the same process and get the same.

    python bench/model_vs_hf.py [--model bench|tiny] [--steps 8] [--warmup 3] [--allocator keep|default]
                                [--bf16 auto|on|off] [--threads N] [--json PATH] [--smoke]

--model bench: 4 layers, 4 heads, width 256, T=256, vocab 50304 (unpadded, as transformers has it); --model tiny: the main
job's model and step (the tiny preset, T=128, vocab 50257 padded to 50304). --smoke: a small model and vocabulary and one
timed step, to check the script end to end (no transformers comparison unless it is installed).
"""
import copy, json, os, platform, statistics, time
from datetime import date

import torch

from gpt2_nb.core import ArgumentParser, seed_everything
from gpt2_nb.model import GPT, GPTConfig, configure_optimizers
from gpt2_nb.hf import to_hf
from gpt2_nb.speed import LOSS_FNS, flops_per_token
from gpt2_nb.precision import cpu_flags, hardware, choose_settings, keep_freed_memory, set_precision

MODELS = dict(bench=(dict(n_layer=4, n_head=4, n_embd=256, block_size=256, vocab_size=50304, vocab_multiple=1), 8, 256),
              tiny=(dict(n_layer=4, n_head=4, n_embd=128, block_size=128), 8, 128),
              smoke=(dict(n_layer=2, n_head=2, n_embd=32, block_size=32, vocab_size=512), 2, 32))
FLAGS = ('avx2', 'avx512f', 'avx512_bf16', 'amx_bf16')
GEMMS = {'aten::mm', 'aten::addmm', 'aten::addmm_', 'aten::bmm', 'aten::baddbmm'}


def matmul_peak(mode:str, sizes=((2048, 2048, 2048), (4096, 4096, 4096), (4096, 4096, 1024)), reps:int=3) -> float:
    "Best TFLOP/s of large products in `mode`: 'fp32', 'tf32' (fp32 tensors, 'medium' matmul precision) or 'bf16'."
    dt = torch.bfloat16 if mode == 'bf16' else torch.float32
    torch.set_float32_matmul_precision('medium' if mode == 'tf32' else 'highest')
    best = 0.0
    try:
        a, b = torch.randn(512, 512, dtype=dt), torch.randn(512, 512, dtype=dt)
        t0 = time.perf_counter(); a @ b; best = 2 * 512**3 / (time.perf_counter() - t0) / 1e12
        if best < 0.01: return best  # no hardware for this format (e.g. bf16 on an AVX2 CPU): big products would take minutes
        for m, k, n in sizes:
            a, b = torch.randn(m, k, dtype=dt), torch.randn(k, n, dtype=dt)
            a @ b
            for _ in range(reps):
                t0 = time.perf_counter(); a @ b; best = max(best, 2 * m * k * n / (time.perf_counter() - t0) / 1e12)
    finally: torch.set_float32_matmul_precision('highest')
    return best


def our_modes(hw, bf16:bool, default:tuple) -> list[tuple]:
    "(precision, compiled, loss) of each of our modes to time; the default's always among them."
    modes = [('fp32', False, 'chunked'), ('fp32', False, 'fused'), ('fp32', True, 'chunked')]
    if hw['fast_fp32'] or bf16: modes += [('tf32', False, 'chunked')]
    if bf16: modes += [('bf16', False, 'chunked'), ('bf16', True, 'chunked'), ('bf16', True, 'plain'), ('bf16', True, 'fused')]
    return modes + ([default] if default not in modes else [])


def make_modes(cfg:dict, hw, bf16:bool, default:tuple, with_hf:bool) -> dict:
    "name -> dict(model, opt, kind, precision, loss): every model a copy of the same initial weights."
    seed_everything(0)
    base = GPT(GPTConfig(**cfg)).train()
    modes = {}
    for prec, compiled, loss in our_modes(hw, bf16, default):
        name = f"ours {prec} {'compiled' if compiled else 'eager'} {loss}"
        m = copy.deepcopy(base)
        modes[name] = dict(model=torch.compile(m) if compiled else m, opt=configure_optimizers(m, 0.1, 6e-4, device_type='cpu'),
                           kind='ours', precision=prec, loss=loss, default=(prec, compiled, loss) == default)
    if with_hf:
        for impl in ('eager', 'sdpa'):
            for prec in ['fp32'] + (['bf16'] if bf16 else []):
                hf = to_hf(base).train()
                hf.set_attn_implementation(impl)
                modes[f"hf   {prec} {impl}"] = dict(model=hf, opt=configure_optimizers(hf, 0.1, 6e-4, device_type='cpu'), kind='hf',
                                                    precision=prec, loss='plain', default=False)
    return modes


def train_step(mode, x, y) -> float:
    "One forward, backward and optimizer step in the mode's precision; returns the loss."
    ctx = set_precision(mode['precision'], 'cpu')
    with ctx():
        if mode['kind'] == 'ours': _, loss = mode['model'](x, y, loss_fn=LOSS_FNS[mode['loss']])
        else: loss = mode['model'](input_ids=x, labels=x).loss
    loss.backward()
    mode['opt'].step()
    mode['opt'].zero_grad(set_to_none=True)
    return loss.item()


def profile_step(mode, x, y, steps:int=3) -> dict:
    "Milliseconds of a step by kind of work (self time of the profiler's events, mean of `steps` steps) and in all."
    from torch.profiler import profile, ProfilerActivity
    with profile(activities=[ProfilerActivity.CPU]): train_step(mode, x, y)  # the profiler's own first-use costs
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps): train_step(mode, x, y)
    parts = dict(gemm=0.0, attention=0.0, optimizer=0.0, rest=0.0)
    for e in prof.key_averages():
        t = e.self_cpu_time_total / 1e3 / steps
        if e.key in GEMMS: parts['gemm'] += t
        elif 'scaled_dot_product' in e.key or 'attention' in e.key: parts['attention'] += t
        elif 'adamw' in e.key.lower(): parts['optimizer'] += t
        else: parts['rest'] += t
    parts['total'] = sum(parts.values())
    return parts


def main():
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--model', choices=('bench', 'tiny'), default='bench', help='bench: L4 H4 C256 T256; tiny: the main job\'s step')
    p.add_argument('--steps', type=int, default=8, help='timed steps per mode')
    p.add_argument('--warmup', type=int, default=3, help='untimed steps per mode (the first compiles)')
    p.add_argument('--allocator', choices=('keep', 'default'), default='keep', help="keep: freed memory kept, as gpt2nb_train does")
    p.add_argument('--bf16', choices=('auto', 'on', 'off'), default='auto', help='time bf16 and tf32 modes (auto: where the CPU has bf16 units)')
    p.add_argument('--threads', type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument('--json', default=None, help='also write the results to this JSON file')
    p.add_argument('--smoke', action='store_true', help='a small model, one warm-up and one timed step: checks the script end to end')
    a = p.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    if a.smoke: a.model, a.steps, a.warmup = 'smoke', 1, 1
    kept = keep_freed_memory() if a.allocator == 'keep' else False
    try:
        import transformers
        transformers.logging.set_verbosity_error()
        hf_version = transformers.__version__
    except ImportError:
        if not a.smoke: raise SystemExit("bench/model_vs_hf.py compares with transformers: pip install transformers (or --smoke)")
        hf_version = None

    cfg, B, T = MODELS[a.model]
    mc = GPTConfig(**cfg)
    fpt = flops_per_token(mc, T)
    hw = hardware('cpu')
    bf16 = a.bf16 == 'on' or (a.bf16 == 'auto' and hw['bf16'])
    s = choose_settings('cpu')  # what gpt2nb_train picks on this machine for a long run
    default = (s['precision'], s['compile'], s['loss'])
    flags = ' '.join(f for f in FLAGS if f in cpu_flags()) or 'none of ' + ', '.join(FLAGS)
    print(f"device: {hw['name']}, flags: {flags} ({hw['units']}); {os.cpu_count()} cores, {torch.get_num_threads()} threads; "
          f"torch {torch.__version__}, transformers {hf_version}; {date.today()}; load average {os.getloadavg()[0]:.1f}")
    print(f"allocator: {'freed memory kept (keep_freed_memory)' if kept else 'glibc default'}")
    print(f"model: {a.model} {cfg}, B={B}, T={T}: {B * T} tokens per step; FLOPs per token = 6·(12·L·C² + Vp·C) + 12·L·C·T = {fpt / 1e6:.2f} M")
    peaks = {m: matmul_peak(m) for m in ('fp32', 'tf32', 'bf16')}
    print("measured matmul peak (best of 2048³, 4096³, 4096×4096×1024): " + ', '.join(f"{m} {v:.2f} TFLOP/s" for m, v in peaks.items()))

    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, mc.vocab_size, (B, T), generator=g)
    y = torch.cat([x[:, 1:], torch.full((B, 1), -100)], dim=1)  # the targets transformers makes from labels=x
    modes = make_modes(cfg, hw, bf16, default, hf_version is not None)
    for name, mode in modes.items():
        t0 = time.perf_counter(); loss = train_step(mode, x, y); t_first = time.perf_counter() - t0
        for _ in range(a.warmup - 1): train_step(mode, x, y)
        print(f"  warm-up {name:28} first step {t_first:6.1f} s, loss {loss:.5f}", flush=True)
    wall = {name: [] for name in modes}
    for _ in range(a.steps):
        for name, mode in modes.items():
            t0 = time.perf_counter(); train_step(mode, x, y); wall[name].append(time.perf_counter() - t0)
    print(f"timed: {a.steps} steps per mode, round-robin; load average after {os.getloadavg()[0]:.1f}")
    rows = {}
    for name, mode in modes.items():
        med = statistics.median(wall[name])
        tps = B * T / med
        rows[name] = dict(ms=1e3 * med, ms_min=1e3 * min(wall[name]), ms_max=1e3 * max(wall[name]), tokens_per_sec=tps,
                          mfu=tps * fpt / (peaks[mode['precision']] * 1e12), precision=mode['precision'], default=mode['default'])
        print(f"  {name:28} {rows[name]['ms']:7.0f} ms/step (min {rows[name]['ms_min']:6.0f}, max {rows[name]['ms_max']:6.0f}) "
              f"{tps:7,.0f} tokens/s  MFU {rows[name]['mfu']:6.1%} of {mode['precision']} peak{'  <- default' if mode['default'] else ''}")
    ours = {n: r for n, r in rows.items() if n.startswith('ours')}
    d_name = next(n for n, r in ours.items() if r['default'])
    fastest = max(ours, key=lambda n: ours[n]['tokens_per_sec'])
    d = ours[d_name]
    print(f"default ({d_name[5:]}): {d['tokens_per_sec']:,.0f} tokens/s = {d['tokens_per_sec'] / ours[fastest]['tokens_per_sec']:.2f}x "
          f"our fastest mode ({fastest[5:]})")
    report = dict(date=str(date.today()), cpu=hw['name'], flags=flags, threads=torch.get_num_threads(), torch=torch.__version__,
                  transformers=hf_version, allocator='keep' if kept else 'default', model=a.model, config=cfg, B=B, T=T,
                  flops_per_token=fpt, peaks_tflops=peaks, modes=rows, default=d_name, fastest_ours=fastest)
    hf_rows = {n: r for n, r in rows.items() if n.startswith('hf')}
    if hf_rows:
        hf = max(hf_rows, key=lambda n: hf_rows[n]['tokens_per_sec'])
        r_def, r_fast = d['tokens_per_sec'] / hf_rows[hf]['tokens_per_sec'], ours[fastest]['tokens_per_sec'] / hf_rows[hf]['tokens_per_sec']
        print(f"ratio to transformers' fastest mode ({hf[5:]}, {hf_rows[hf]['tokens_per_sec']:,.0f} tokens/s): "
              f"default {r_def:.2f}x, fastest {r_fast:.2f}x")
        # medians can hide a mode whose steps alternate between fast and slow ones: compare the fastest steps too
        hf_min = min(hf_rows, key=lambda n: hf_rows[n]['ms_min'])
        r_min = hf_rows[hf_min]['ms_min'] / d['ms_min']
        print(f"on each mode's fastest step: default {d['ms_min']:.0f} ms, transformers' fastest {hf_rows[hf_min]['ms_min']:.0f} ms "
              f"({hf_min[5:]}) -> {r_min:.2f}x")
        report.update(fastest_hf=hf, ratio_default=r_def, ratio_fastest=r_fast, fastest_hf_by_min=hf_min, ratio_default_min=r_min)
    # Where the time goes, and the Amdahl ceiling: the step with only its GEMMs and attention kernels left
    prof = {d_name: profile_step(modes[d_name], x, y)}
    if hf_rows: prof[hf] = profile_step(modes[hf], x, y)
    for name, pr in prof.items():
        print(f"profile of one step, {name}: " + ', '.join(f"{k} {v:.0f} ms ({v / pr['total']:.0%})" for k, v in pr.items() if k != 'total')
              + f"; {pr['total']:.0f} ms in all")
    pr = prof[d_name]
    scale = d['ms'] / pr['total']  # the profiler's total against the timed median
    floor_ms = (pr['gemm'] + pr['attention']) * scale
    ceil_tps = B * T / (floor_ms / 1e3)
    ceiling = dict(floor_ms=floor_ms, tokens_per_sec=ceil_tps, mfu=ceil_tps * fpt / (peaks[d['precision']] * 1e12),
                   gemm_tflops=B * T * (fpt - 12 * mc.n_layer * mc.n_embd * T) / (pr['gemm'] * scale / 1e3) / 1e12)
    print(f"ceiling (Amdahl): our default's GEMMs and attention kernels alone take {floor_ms:.0f} ms of its {d['ms']:.0f} ms; "
          f"with all else free it would run {ceil_tps:,.0f} tokens/s, MFU {ceiling['mfu']:.0%}"
          + (f", {ceil_tps / hf_rows[hf]['tokens_per_sec']:.2f}x transformers' fastest" if hf_rows else '')
          + f"; its GEMMs run at {ceiling['gemm_tflops']:.2f} TFLOP/s ({ceiling['gemm_tflops'] / peaks[d['precision']]:.0%} of the peak)")
    report.update(profiles=prof, ceiling=ceiling)
    if a.json:
        with open(a.json, 'w') as f: json.dump(report, f, indent=2)
        print(f"wrote {a.json}")


if __name__ == '__main__': main()
