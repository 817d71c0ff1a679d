"""GPT-2 124M training steps: gpt2_nb's `GPT` in each loss path against nanoGPT's model and transformers' GPT-2.

GPT-2's own size (12 layers, 12 heads, width 768, vocabulary 50304), T=256, B=2, bf16 autocast (fp32 where the CPU
has no bf16 units: --precision), fused AdamW for every model. Modes:

- ours compiled, each loss path of `--loss` (plain: logits then `F.cross_entropy`; chunked: the speed lesson's
  `linear_cross_entropy`; fused: its `fused_linear_cross_entropy`, tiles of logits that stay in cache) with each
  attention of `--attention` (flash: `F.scaled_dot_product_attention`; naive: the attention lesson's written-out
  softmax(q·kᵀ)·v, which torch.compile fuses);
- with `--gelu-before`, ours plain flash with the GELU as it was before the model lesson's `TanhGELU`
  (`nn.GELU(approximate='tanh')`, which Inductor compiles to slower CPU code than the same function as x·σ(2u));
- nanoGPT's `GPT` compiled, from a checkout of https://github.com/karpathy/nanoGPT (`--nanogpt DIR`, the folder with
  its `model.py`; skipped without it), with the same initial weights (the padded rows too);
- transformers' `GPT2LMHeadModel` (sdpa attention, eager: compiling it is not how it is shipped).

The steps run round-robin (one step of each mode in turn, `--rounds` times, after `--warmup` untimed steps each) so
that load on the machine slows all alike; the median of each mode is reported as ms and tokens/s, with the ratio of
each of ours to nanoGPT and to transformers, and the paired ratio: the median over rounds of nanoGPT's step time
over ours in the same round, which cancels slow and fast spells of a shared machine. `--profile` adds, per mode,
where a step's time goes: the operators with the most self time (torch.profiler), matrix products summed, and
the compiled kernels by what they compute (GELU, the loss's softmax, the rest).

    python bench/gpt2_124m.py --nanogpt ~/nanoGPT [--rounds 4] [--warmup 2] [--profile] [--gelu-before] [--json PATH]
    python bench/gpt2_124m.py --smoke        # a small model, one round: checks the script end to end
"""
import copy, importlib.util, json, os, statistics, sys, time
from datetime import date
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from gpt2_nb.core import ArgumentParser, seed_everything
from gpt2_nb.model import GPT, GPTConfig, configure_optimizers, TanhGELU
from gpt2_nb.precision import cpu_flags, device_name, get_device, hardware, keep_freed_memory, set_precision
from gpt2_nb.speed import LOSS_FNS

GPT2 = dict(n_layer=12, n_head=12, n_embd=768, block_size=1024)
SMOKE = dict(n_layer=2, n_head=2, n_embd=64, block_size=64, vocab_size=512)
GEMMS = {'aten::mm', 'aten::addmm', 'aten::addmm_', 'aten::bmm', 'aten::baddbmm', 'aten::linear'}
FLAGS = ('avx2', 'avx512f', 'avx512_bf16', 'amx_bf16')


def load_nanogpt(folder:str):
    "nanoGPT's model module, imported from its checkout's `model.py`."
    path = Path(folder).expanduser()/'model.py'
    if not path.exists(): raise SystemExit(f"error: no model.py in {folder}: give --nanogpt a checkout of karpathy/nanoGPT")
    spec = importlib.util.spec_from_file_location('nanogpt_model', path)
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod


def nanogpt_from(ours:GPT, mod):
    "nanoGPT's GPT with our model's weights (both use GPT-2's parameter names and nn.Linear layouts)."
    c = ours.config
    m = mod.GPT(mod.GPTConfig(block_size=c.block_size, vocab_size=c.padded_vocab_size, n_layer=c.n_layer,
                              n_head=c.n_head, n_embd=c.n_embd, dropout=0.0, bias=c.bias))
    missing = m.load_state_dict(ours.state_dict(), strict=False)
    left = [k for k in missing.missing_keys if not k.endswith('.attn.bias')]  # its causal mask buffer, if any
    if left or missing.unexpected_keys: raise SystemExit(f"nanoGPT's model differs: {left} {missing.unexpected_keys}")
    return m


def ours(base:GPT, loss:str, attn:str, gelu=None) -> dict:
    "A compiled copy of `base` with attention `attn` (and, given, another GELU module), as a mode."
    m, dev = copy.deepcopy(base), base.lm_head.weight.device.type
    for block in m.transformer.h:
        block.attn.attention = attn
        if gelu is not None: block.mlp.gelu = gelu
    return dict(model=torch.compile(m), kind='ours', loss=loss, opt=configure_optimizers(m, 0.1, 6e-4, device_type=dev))


def make_modes(cfg:dict, losses:list, attentions:list, nano, with_hf:bool, gelu_before:bool=False, device='cpu') -> dict:
    "name -> dict(model, opt, kind, loss): every model starts from the same weights."
    seed_everything(0)
    base = GPT(GPTConfig(**cfg)).train().to(device)
    dev = torch.device(device).type
    assert isinstance(base.transformer.h[0].mlp.gelu, TanhGELU)
    modes = {f'ours {loss} {attn}': ours(base, loss, attn) for loss in losses for attn in attentions}
    if gelu_before: modes['ours plain flash, GELU before'] = ours(base, 'plain', 'flash', torch.nn.GELU(approximate='tanh'))
    if nano is not None:
        m = nanogpt_from(base, nano).train().to(device)
        modes['nanoGPT compiled'] = dict(model=torch.compile(m), kind='nanogpt', loss='plain',
                                         opt=configure_optimizers(m, 0.1, 6e-4, device_type=dev))
    if with_hf:
        from gpt2_nb.hf import to_hf
        hf = to_hf(base).train().to(device)
        hf.set_attn_implementation('sdpa')
        modes['transformers sdpa'] = dict(model=hf, kind='hf', loss='plain',
                                          opt=configure_optimizers(hf, 0.1, 6e-4, device_type=dev))
    return modes


def train_step(mode, x, y, precision:str) -> float:
    "One forward, backward and fused AdamW step; the loss."
    with set_precision(precision, x.device.type)():
        if mode['kind'] == 'ours': _, loss = mode['model'](x, y, loss_fn=LOSS_FNS[mode['loss']])
        elif mode['kind'] == 'nanogpt': _, loss = mode['model'](x, y)
        else: loss = mode['model'](input_ids=x, labels=x).loss
    loss.backward()
    mode['opt'].step()
    mode['opt'].zero_grad(set_to_none=True)
    return loss.item()


def profile(mode, x, y, precision:str, top:int=12) -> dict:
    "ms per step by operator (self CPU time, mean of 2 steps): matrix products summed, the top others, the rest."
    from torch.profiler import profile as prof_, ProfilerActivity
    with prof_(activities=[ProfilerActivity.CPU]): train_step(mode, x, y, precision)
    with prof_(activities=[ProfilerActivity.CPU]) as pr:
        for _ in range(2): train_step(mode, x, y, precision)
    ops = {}
    for e in pr.key_averages():
        key = ('matmuls' if e.key in GEMMS else 'compiled kernels' if 'CompiledFxGraph' in e.key
               else ('kernels: GELU' if 'gelu' in e.key or 'sigmoid' in e.key else 'kernels: loss softmax' if 'log_softmax' in e.key
                     else 'kernels: rest') if 'cpp_fused' in e.key
               else 'flash attention backward' if 'flash_attention' in e.key and 'backward' in e.key
               else 'flash attention' if 'flash_attention' in e.key else e.key.replace('aten::', ''))
        ops[key] = ops.get(key, 0.0) + e.self_cpu_time_total / 2e3
    total = sum(ops.values())
    ranked = sorted(ops.items(), key=lambda kv: -kv[1])
    out = dict(ranked[:top]); out['rest'] = total - sum(out.values()); out['total'] = total
    return out


def main():
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--nanogpt', default=os.environ.get('NANOGPT_DIR'), help='a checkout of karpathy/nanoGPT (default: $NANOGPT_DIR)')
    p.add_argument('--loss', nargs='+', default=['plain', 'chunked', 'fused'], choices=sorted(LOSS_FNS),
                   help='our loss paths to time')
    p.add_argument('--gelu-before', action='store_true', help="also ours plain flash with nn.GELU(approximate='tanh')")
    p.add_argument('--attention', nargs='+', default=['flash', 'naive'], choices=('flash', 'naive'),
                   help='our attention implementations to time')
    p.add_argument('--device', default='cpu', help="cpu, cuda or auto (cuda if there is one); the profile is CPU-only")
    p.add_argument('--precision', default='auto', choices=('auto', 'fp32', 'bf16'), help='auto: bf16 where the CPU has bf16 units')
    p.add_argument('--batch-size', type=int, default=2); p.add_argument('--seq-len', type=int, default=256)
    p.add_argument('--rounds', type=int, default=4, help='timed steps per mode, round-robin')
    p.add_argument('--warmup', type=int, default=2, help='untimed steps per mode (the first compiles)')
    p.add_argument('--no-hf', action='store_true', help='leave out transformers')
    p.add_argument('--profile', action='store_true', help='also profile one step of each mode')
    p.add_argument('--json', help='also write the results to this JSON file')
    p.add_argument('--smoke', action='store_true', help='a small model and one round: checks the script end to end')
    a = p.parse_args()
    device = get_device(a.device)
    if device.type == 'cpu': keep_freed_memory()
    # name each compiled kernel in the profile (set before anything compiles)
    if a.profile: torch._inductor.config.cpp.enable_kernel_profile = True
    cfg, B, T = (SMOKE, 2, 32) if a.smoke else (GPT2, a.batch_size, a.seq_len)
    if a.smoke: a.rounds, a.warmup = 1, 1
    hw = hardware(device)
    precision = a.precision if a.precision != 'auto' else 'bf16' if hw['bf16'] else 'fp32'
    nano = load_nanogpt(a.nanogpt) if a.nanogpt else None
    try: import transformers; transformers.logging.set_verbosity_error(); hf_version = transformers.__version__
    except ImportError: hf_version = None
    flags = ' '.join(f for f in FLAGS if f in cpu_flags())
    print(f"device: {device_name(device)}, flags: {flags}; {torch.get_num_threads()} threads; torch {torch.__version__}, "
          f"transformers {hf_version}; {date.today()}; load average {os.getloadavg()[0]:.1f}")
    print(f"model: {cfg}, vocabulary padded to {GPTConfig(**cfg).padded_vocab_size}, B={B}, T={T}, {precision}, "
          f"fused AdamW; ours and nanoGPT compiled"
          + ('' if nano else '; nanoGPT left out (no --nanogpt)'))
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, GPTConfig(**cfg).vocab_size, (B, T), generator=g).to(device)
    # next-token targets, none ignored (nanoGPT ignores -1, not -100); transformers shifts labels=x itself
    y = torch.cat([x[:, 1:], x[:, :1]], dim=1)
    modes = make_modes(cfg, a.loss, a.attention, nano, hf_version is not None and not a.no_hf, a.gelu_before, device)
    for name, mode in modes.items():
        t0 = time.perf_counter(); loss = train_step(mode, x, y, precision)
        first = time.perf_counter() - t0
        for _ in range(a.warmup - 1): train_step(mode, x, y, precision)
        print(f"  warm-up {name:24} first step {first:6.1f} s, loss {loss:.5f}", flush=True)
    wall = {n: [] for n in modes}
    for _ in range(a.rounds):
        for name, mode in modes.items():
            t0 = time.perf_counter(); train_step(mode, x, y, precision); wall[name].append(time.perf_counter() - t0)  # .item() syncs
    rows = {n: dict(ms=1e3 * statistics.median(w), tokens_per_sec=B * T / statistics.median(w),
                    ms_min=1e3 * min(w), ms_max=1e3 * max(w)) for n, w in wall.items()}
    if 'nanoGPT compiled' in wall:
        for n, w in wall.items():
            rows[n]['paired_vs_nanogpt'] = statistics.median(b / o for b, o in zip(wall['nanoGPT compiled'], w))
    print(f"timed: {a.rounds} steps per mode, round-robin; load average after {os.getloadavg()[0]:.1f}")
    ref = {k: rows[n]['tokens_per_sec'] for k, n in (('nanoGPT', 'nanoGPT compiled'), ('transformers', 'transformers sdpa'))
           if n in rows}
    for name, r in rows.items():
        vs = ''.join(f", {r['tokens_per_sec'] / v:.2f}x {k}" for k, v in ref.items() if not name.startswith(k))
        print(f"  {name:24} {r['ms']:7.0f} ms/step (min {r['ms_min']:.0f}, max {r['ms_max']:.0f}) "
              f"{r['tokens_per_sec']:6,.0f} tokens/s{vs}"
              + (f", paired {r['paired_vs_nanogpt']:.2f}x nanoGPT" if 'paired_vs_nanogpt' in r and name[:4] == 'ours' else ''))
    report = dict(date=str(date.today()), device=device_name(device), cpu=device_name('cpu'), flags=flags, torch=torch.__version__,
                  transformers=hf_version, config=cfg, B=B, T=T, precision=precision, modes=rows)
    if a.profile and device.type == 'cpu':
        report['profiles'] = {}
        for name, mode in modes.items():
            pr = report['profiles'][name] = profile(mode, x, y, precision)
            print(f"profile, {name} ({pr['total']:.0f} ms): "
                  + ', '.join(f"{k} {v:.0f}" for k, v in pr.items() if k != 'total'))
    if a.json:
        Path(a.json).write_text(json.dumps(report, indent=2))
        print(f"wrote {a.json}")


if __name__ == '__main__': main()
