"""The output layer and loss of GPT-2 124M three ways: peak memory, time, and agreement with the plain loss.

For each loss of the speed lesson (plain: logits then `F.cross_entropy`; chunked: `linear_cross_entropy`; fused:
`fused_linear_cross_entropy`), one forward and backward of the output layer (width 768, vocabulary 50257 padded to
50304, the weight tied as in the model) and the loss over B×T rows, bf16 autocast (fp32 with --precision fp32), run
eagerly in a fresh process: the rise of the peak resident memory (VmHWM, reset before the step; on a GPU, of the
peak allocated memory) over what the inputs and weights already hold, and the median time of --steps steps. Then, in this process, each loss's value and
gradients against the plain loss's, in fp32 and under bf16 autocast.

    python bench/fused_loss.py [--batch-size 4] [--seq-len 1024] [--steps 3] [--device cpu|cuda] [--json PATH]
    python bench/fused_loss.py --smoke      # small sizes: checks the script end to end
"""
import json, statistics, subprocess, sys, time
from datetime import date
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from gpt2_nb.bench import peak_memory, peak_rss, tensor_error
from gpt2_nb.core import ArgumentParser
from gpt2_nb.precision import cpu_flags, device_name, get_device
from gpt2_nb.speed import LOSS_FNS

FLAGS = ('avx2', 'avx512f', 'avx512_bf16', 'amx_bf16')


def head_loss(loss:str, x, w, t, V:int):
    "The mean loss of x·wᵀ against t by the named loss path (plain: the model's own padding mask and F.cross_entropy)."
    if LOSS_FNS[loss] is not None: return LOSS_FNS[loss](x, w, t, V)
    logits = x @ w.t()
    logits[:, V:] = float('-inf')
    return torch.nn.functional.cross_entropy(logits.float(), t)


def inputs(N:int, C:int, Vp:int, V:int, seed:int=0, device='cpu'):
    "Final hidden states (N, C), the output weight (Vp, C) and targets, fixed by the seed."
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(N, C, generator=g)
    w = torch.randn(Vp, C, generator=g) * 0.02
    return x.to(device), w.to(device), torch.randint(0, V, (N,), generator=g).to(device)


def probe(a:dict) -> dict:
    "In this (fresh) process: peak memory rise and step times of one loss path."
    from gpt2_nb.precision import keep_freed_memory
    dev = a['device']
    if dev == 'cpu': keep_freed_memory()
    x0, w0, t = inputs(a['N'], a['C'], a['Vp'], a['V'], device=dev)
    w = w0.requires_grad_()
    def step():
        x = x0.clone().requires_grad_()
        with torch.autocast(dev, torch.bfloat16, enabled=a['precision'] == 'bf16'):
            loss = head_loss(a['loss'], x, w, t, a['V'])
        loss.backward()
        w.grad = None
        if dev != 'cpu': torch.cuda.synchronize()
    def timed():
        t0 = time.perf_counter(); step(); times.append(time.perf_counter() - t0)
    times = []
    # the first step's peak: resident memory on a CPU, allocated memory on a GPU
    peak = peak_rss(timed) if dev == 'cpu' else peak_memory(timed, dev)
    for _ in range(a['steps']): timed()
    return dict(peak_bytes=peak, ms=1e3 * statistics.median(times))


def agreement(N:int, C:int, Vp:int, V:int, device='cpu') -> dict:
    "Each loss path against the plain one: relative differences of loss, dx and dw, fp32 and bf16."
    x0, w0, t = inputs(N, C, Vp, V, seed=1, device=device)
    t[::7] = -100                                                   # some ignored rows too
    out = {}
    for precision in ('fp32', 'bf16'):
        res = {}
        for loss in LOSS_FNS:
            x, w = x0.clone().requires_grad_(), w0.clone().requires_grad_()
            with torch.autocast(x.device.type, torch.bfloat16, enabled=precision == 'bf16'):
                l = head_loss(loss, x, w, t, V)
            l.backward()
            res[loss] = (l.detach(), x.grad, w.grad)
        ref = res['plain']
        out[precision] = {loss: {k: tensor_error(a, b)['rel'] for k, a, b in zip(('loss', 'dx', 'dw'), ref, r)}
                          for loss, r in res.items() if loss != 'plain'}
    return out


def main():
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--batch-size', type=int, default=4); p.add_argument('--seq-len', type=int, default=1024)
    p.add_argument('--precision', default='bf16', choices=('bf16', 'fp32'))
    p.add_argument('--device', default='cpu', help='cpu, cuda or auto (cuda if there is one)')
    p.add_argument('--steps', type=int, default=3, help='timed steps after the measured one')
    p.add_argument('--json', help='also write the results to this JSON file')
    p.add_argument('--smoke', action='store_true', help='small sizes, one step: checks the script end to end')
    p.add_argument('--probe', help='(internal) run one probe in this process, given as JSON')
    a = p.parse_args()
    if a.probe: print(json.dumps(probe(json.loads(a.probe)))); return
    device = get_device(a.device)
    N, C, Vp, V = (a.batch_size * a.seq_len, 768, 50304, 50257) if not a.smoke else (64, 32, 512, 500)
    steps = 1 if a.smoke else a.steps
    flags = ' '.join(f for f in FLAGS if f in cpu_flags())
    print(f"device: {device_name(device)}, flags: {flags}; {torch.get_num_threads()} threads; torch {torch.__version__}; "
          f"{date.today()}")
    print(f"output layer + loss: N=B*T={N} rows, C={C}, vocabulary {V} padded to {Vp}, {a.precision}, eager, "
          f"forward + backward; peak = rise of the peak resident memory in a fresh process")
    rows = {}
    for loss in LOSS_FNS:
        args = dict(loss=loss, N=N, C=C, Vp=Vp, V=V, precision=a.precision, steps=steps, device=device.type)
        r = subprocess.run([sys.executable, __file__, '--probe', json.dumps(args)], capture_output=True, text=True)
        if r.returncode: raise SystemExit(f"error: the {loss} probe failed: {r.stderr.strip().splitlines()[-1:]}")
        rows[loss] = json.loads(r.stdout.strip().splitlines()[-1])
        print(f"  {loss:8} peak {rows[loss]['peak_bytes'] / 2**20:8,.0f} MiB  {rows[loss]['ms']:8,.0f} ms", flush=True)
    logits = N * Vp * 4
    print(f"  (the fp32 logits alone: {logits / 2**20:,.0f} MiB; the fp32 weight gradient: {Vp * C * 4 / 2**20:,.0f} MiB)")
    agree = agreement(*((2048, C, Vp, V) if not a.smoke else (N, C, Vp, V)), device=device)
    for precision, res in agree.items():
        print(f"against plain, {precision}: " + '; '.join(
            f"{loss} loss {r['loss']:.1e}, dx {r['dx']:.1e}, dw {r['dw']:.1e}" for loss, r in res.items()))
    if a.json:
        Path(a.json).write_text(json.dumps(dict(date=str(date.today()), device=device_name(device), cpu=device_name('cpu'), flags=flags,
                                                torch=torch.__version__, N=N, C=C, V=V, Vp=Vp, precision=a.precision,
                                                losses=rows, logits_bytes=logits, agreement=agree), indent=2))
        print(f"wrote {a.json}")


if __name__ == '__main__': main()
