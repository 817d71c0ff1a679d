"""Check the memory lesson's memory model on a GPU: estimated against measured peak memory of training steps.

For each configuration (GPT-2 124M at T=1024 by default: bf16 and fp32, flash and naive attention, with and without
activation checkpointing, two micro-batch sizes) it builds the model, runs three training steps of the training loop's
own `forward_backward` + `clip_and_check` + AdamW on random tokens, and an evaluation, and records
`torch.cuda.max_memory_allocated` over the third step and over the evaluation next to `gpt2_nb.memory.estimate_memory`.
Results go to bench/results/gpu_memory_<date>.json, rewritten after every configuration, so a timeout keeps what was measured.

    PYTHONPATH=. python3 bench/gpu_memory.py            # on the GPU machine (a few minutes)
    PYTHONPATH=. python3 bench/gpu_memory.py --smoke    # tiny sizes on the CPU (profiler peaks): checks the script end to end

Needs only torch, numpy and tiktoken.
"""
import argparse, datetime, gc, json, os, platform, tempfile, time
from pathlib import Path

import torch

from gpt2_nb.model import GPT, GPTConfig, configure_optimizers
from gpt2_nb.precision import get_device, set_precision, device_name
from gpt2_nb.memory import estimate_memory, measure_memory, MiB
from gpt2_nb.loop import forward_backward, clip_and_check, evaluate
from gpt2_nb.bench import RandomTokens

# (precision, attention, activation checkpointing, micro-batch)
CONFIGS = [('bf16', 'flash', False, 8), ('bf16', 'flash', False, 16), ('bf16', 'flash', True, 16), ('fp32', 'flash', False, 8),
           ('bf16', 'naive', False, 4), ('tf32', 'flash', True, 8)]


def measure_cuda(mc, batch_size, seq_len, precision, activation_checkpointing, device, steps=3):
    "Peak allocated bytes over the last of `steps` training steps and over one evaluation, on a CUDA device."
    gc.collect(); torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats(device)
    torch.manual_seed(0)
    with torch.device(device): model = GPT(mc)
    model.activation_checkpointing = activation_checkpointing
    opt = configure_optimizers(model, weight_decay=0.1, lr=6e-4, device_type='cuda')
    autocast, loader = set_precision(precision, device), RandomTokens(mc.vocab_size, batch_size, seq_len)
    t0 = time.perf_counter()
    for i in range(steps):
        if i == steps - 1: torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats(device)
        opt.zero_grad(set_to_none=True)
        loss = forward_backward(model, loader, 1, autocast, device).item()
        clip_and_check(model, loss, 1.0, i + 1)
        opt.step()
    torch.cuda.synchronize(); step = torch.cuda.max_memory_allocated(device)
    dt = (time.perf_counter() - t0) / steps
    torch.cuda.reset_peak_memory_stats(device)
    evaluate(model, loader, 1, autocast, device)
    torch.cuda.synchronize(); ev = torch.cuda.max_memory_allocated(device)
    set_precision('fp32', device)
    del model, opt
    return dict(step=step, eval=ev, s_per_step=round(dt, 3))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--smoke', action='store_true', help='tiny model on the CPU (profiler peaks), to check the script anywhere')
    p.add_argument('--device', default='auto')
    p.add_argument('--preset', default='gpt2')
    p.add_argument('--seq-len', type=int, default=1024)
    p.add_argument('--budget-s', type=float, default=240, help='skip configurations once this many seconds have passed')
    p.add_argument('--out', default=None, help='JSON to write (default bench/results/gpu_memory_<date>.json; with --smoke a temp file)')
    a = p.parse_args(argv)
    t_start, today = time.time(), datetime.date.today().isoformat()
    device = torch.device('cpu') if a.smoke else get_device(a.device)
    preset, T, configs = a.preset, a.seq_len, CONFIGS
    sizes = {}
    if a.smoke: preset, T, sizes, configs = 'tiny', 64, dict(n_layer=2), [('fp32', 'flash', False, 2), ('bf16', 'naive', True, 2)]
    out = Path(a.out or (Path(tempfile.gettempdir())/f'gpt2nb_gpu_memory_smoke_{today}.json' if a.smoke else f'bench/results/gpu_memory_{today}.json'))
    out.parent.mkdir(parents=True, exist_ok=True)
    name = device_name(device)
    report = dict(date=today, device=name, device_type=device.type, torch=torch.__version__, preset=preset, seq_len=T,
                  measured_with='torch.cuda.max_memory_allocated' if device.type == 'cuda' else 'profiler (CPU tensors)', results=[])
    def write():
        report['wall_s'] = round(time.time() - t_start, 1)
        tmp = out.with_suffix('.json.tmp'); tmp.write_text(json.dumps(report, indent=2)); os.replace(tmp, out)
    print(f"{name} | torch {torch.__version__} | {preset} T={T} | writing {out}", flush=True)
    for precision, attention, ac, B in configs:
        row = dict(precision=precision, attention=attention, activation_checkpointing=ac, batch_size=B)
        if time.time() - t_start > a.budget_s: row['skipped'] = 'time budget'; report['results'].append(row); write(); continue
        mc = GPTConfig.from_preset(preset, block_size=T, attention=attention, **sizes)
        chunked = device.type == 'cpu'  # what training uses by default on each device
        e = estimate_memory(mc, B, T, precision, activation_checkpointing=ac, chunked_loss=chunked)
        try:
            if device.type == 'cuda': m = measure_cuda(mc, B, T, precision, ac, device)
            else: m = measure_memory(mc, B, T, precision, activation_checkpointing=ac, chunked_loss=chunked)
            row.update(step_est_mib=round(e['step'] / MiB, 1), step_mib=round(m['step'] / MiB, 1), step_ratio=round(e['step'] / m['step'], 3),
                       eval_est_mib=round(e['eval'] / MiB, 1), eval_mib=round(m['eval'] / MiB, 1), eval_ratio=round(e['eval'] / m['eval'], 3))
            if 's_per_step' in m: row['s_per_step'] = m['s_per_step']
        except torch.cuda.OutOfMemoryError: row['error'] = 'out of memory'
        except Exception as ex: row['error'] = f"{type(ex).__name__}: {str(ex).splitlines()[0][:300] if str(ex) else ''}"
        report['results'].append(row); write()
        print(json.dumps(row), flush=True)
    write()
    print(f"done in {time.time() - t_start:.0f} s: {out}", flush=True)
    return report


if __name__ == '__main__': main()
