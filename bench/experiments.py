"""Run the course's three experiments at full size and print their tables.

Precision (fp32/TF32/bf16: step time, tokens/s, peak memory, error of logits and gradients against fp32, and short loss
curves), flash vs naive attention (time and peak memory against T, forward and forward+backward) and gradient
accumulation (gradient error against one big batch, step time and peak memory against micro-batch size).

    python bench/experiments.py                          # everything, on the best device (CPU here: ~15-30 minutes)
    python bench/experiments.py --only attention         # one experiment
    python bench/experiments.py --device cuda            # GPU sizes (GPT-2 124M); writes bench/results/experiments_<date>.json
    python bench/experiments.py --smoke                  # tiny sizes: checks the script end to end in a minute

The sizes are `gpt2_nb.bench.full_sizes(device)`, the same ones the experiment notebooks record. The measuring code is
`gpt2_nb.bench`. Ends with the headline numbers: bf16's speed-up over fp32, flash's share of naive's peak memory at the
largest T, and the largest relative gradient difference between accumulated and one-batch gradients.
"""
import json, tempfile, time
from pathlib import Path

import torch

from gpt2_nb.core import ArgumentParser, GPT2NBError, atomic_write, ensure_dir, run_cli
from gpt2_nb.precision import get_device
from gpt2_nb.bench import (stamp, device_info, full_sizes, sized_config, available_precisions, precision_sweep,
                           short_train, attention_sweep, accumulation_sweep, table)

EXPERIMENTS = ('precision', 'curves', 'attention', 'accumulation')
SMOKE = dict(precision=dict(preset='tiny', batch_size=1, seq_len=16, warmup=0, repeats=1),
             curves=dict(preset='tiny', steps=2, batch_size=1, seq_len=16),
             attention=dict(seq_lens=(64, 128), warmup=0, repeats=1),
             accumulation=dict(preset='tiny', total_batch=2, micro_batches=(1, 2), seq_len=16, warmup=0, repeats=1))


def sample_data() -> Path:
    "The bundled sample text, tokenized into a fresh temporary folder (about a second; a shared folder could hold an older sample)."
    from gpt2_nb.data import prepare
    out = Path(tempfile.mkdtemp())/'shards'
    prepare(out=out)
    return out


def run(only=EXPERIMENTS, device='auto', data=None, json_path=None, smoke=False, say=print) -> dict:
    "Run the chosen experiments at full size (or smoke-test size) on `device`; print each table and return {experiment: rows}."
    bad = [e for e in only if e not in EXPERIMENTS]
    if bad: raise GPT2NBError(f"unknown experiment {bad[0]!r}: choose from {', '.join(EXPERIMENTS)}")
    device = get_device(device)
    sizes = SMOKE if smoke else full_sizes(device)
    report = dict(device_info(device), sizes=sizes)
    say(stamp(device))
    for name in only:
        t0 = time.time()
        kw = dict(sizes[name])
        if name == 'precision':
            cfg = sized_config(kw.pop('preset'), kw['seq_len'])
            rows = precision_sweep(cfg, device=device, **kw)
        elif name == 'curves':
            cfg = sized_config(kw.pop('preset'), kw['seq_len'])
            folder = Path(data) if data else sample_data()
            rows = []
            for p in available_precisions(device):
                c = short_train(cfg, folder, precision=p, device=device, **kw)
                rows.append(dict(precision=p, steps=len(c['losses']), first_loss=c['losses'][0], last_loss=c['losses'][-1],
                                 mean_last_10=sum(c['losses'][-10:])/len(c['losses'][-10:]), tokens_per_sec=c['tokens_per_sec'],
                                 losses=c['losses']))
        elif name == 'attention':
            rows = attention_sweep(device=device, **kw)
        else:
            cfg = sized_config(kw.pop('preset'), kw['seq_len'])
            rows = accumulation_sweep(cfg, device=device, **kw)
        report[name] = rows
        say(f"\n## {name}  ({time.time() - t0:.0f} s; sizes {sizes[name]})")
        say(table([{k: v for k, v in r.items() if k != 'losses'} for r in rows]))
        if json_path: write_json(report, json_path)
    say('\n## headline')
    say(table(headline(report)))
    if json_path: write_json(report, json_path); say(f"\nwrote {json_path}")
    return report


def headline(report:dict) -> list:
    "The few numbers worth a front page, from whatever experiments the report holds."
    out = []
    if 'precision' in report:
        tps = {r['precision']: r['tokens_per_sec'] for r in report['precision']}
        for p in tps:
            if p != 'fp32': out.append(dict(result=f"{p} tokens/s over fp32 (training step)", value=f"{tps[p]/tps['fp32']:.2f}x"))
        errs = {r['precision']: r for r in report['precision']}
        if 'bf16' in errs: out.append(dict(result='bf16 relative error of logits / gradients vs fp32',
                                           value=f"{errs['bf16']['logits_rel_err']:.1e} / {errs['bf16']['grads_rel_err']:.1e}"))
    if 'curves' in report:
        c = {r['precision']: r for r in report['curves']}
        if 'bf16' in c: out.append(dict(result=f"loss after {c['bf16']['steps']} steps, fp32 vs bf16",
                                         value=f"{c['fp32']['last_loss']:.3f} vs {c['bf16']['last_loss']:.3f}"))
    if 'attention' in report:
        T = max(r['T'] for r in report['attention'])
        by = {(r['impl'], r['mode']): r for r in report['attention'] if r['T'] == T}
        for mode in ('forward', 'forward+backward'):
            n, f = by[('naive', mode)], by[('flash', mode)]
            out.append(dict(result=f"flash peak memory / naive at T={T}, {mode}",
                            value=f"{f['peak_mib']:.1f} / {n['peak_mib']:.1f} MiB = {f['peak_mib']/n['peak_mib']:.1%}"))
    if 'accumulation' in report:
        worst = max(r['grads_rel_err'] for r in report['accumulation'])
        out.append(dict(result='accumulated vs one-batch gradients, largest relative difference', value=f"{worst:.1e}"))
    return out


def write_json(report:dict, path):
    path = Path(path)
    ensure_dir(path.parent, 'results folder', '--json')
    with atomic_write(path, 'w') as f: json.dump(report, f, indent=1)


def main(argv=None):
    p = ArgumentParser(prog='bench/experiments.py', description=__doc__.splitlines()[0])
    p.add_argument('--only', default=','.join(EXPERIMENTS), help=f"comma-separated subset of {','.join(EXPERIMENTS)}")
    p.add_argument('--device', default='auto', help='auto (cuda > mps > cpu), cpu or cuda')
    p.add_argument('--data', default=None, help='a folder written by gpt2nb_prepare for the loss curves (default: the bundled sample)')
    p.add_argument('--smoke', action='store_true', help='tiny sizes, to check the script end to end')
    p.add_argument('--json', default=None, help='also write the results here (default on CUDA: bench/results/experiments_<date>.json)')
    a = p.parse_args(argv)
    json_path = a.json
    if json_path is None and get_device(a.device).type == 'cuda' and not a.smoke:
        json_path = Path(__file__).resolve().parent/'results'/f"experiments_{device_info('cuda')['date']}.json"
    run([e.strip() for e in a.only.split(',') if e.strip()], a.device, a.data, json_path, a.smoke)


if __name__ == '__main__': run_cli(main)
