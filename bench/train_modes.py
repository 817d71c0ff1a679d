"""The default settings of `gpt2nb_train` against every explicit mode, on the main job, through the command line itself.

Runs `python -m gpt2_nb.train` (the program `gpt2nb_train` calls) on the main job's settings — the tiny preset, B=8, T=128,
the bundled sample — for `--steps` steps, once with no precision/compile/loss flags (the default: chosen by the hardware)
and once per explicit mode (`--precision fp32|tf32|bf16` × `--compile`/`--no-compile` × `--loss chunked|plain`; bf16 and
tf32 only where the CPU has bf16 units, unless --all). Each run's tokens/s is the median over its logged steps after the
first `--skip` (the first steps compile). Prints the settings line the default run printed, a table of the modes, and the
default's tokens/s as a fraction of the fastest explicit mode's.

    python bench/train_modes.py [--steps 120] [--skip 20] [--all] [--json PATH]
"""
import json, os, statistics, subprocess, sys, tempfile, time
from datetime import date
from pathlib import Path

from gpt2_nb.core import ArgumentParser
from gpt2_nb.precision import hardware, cpu_flags

ROOT = Path(__file__).resolve().parents[1]


def run(out:Path, data:Path, steps:int, flags:list) -> dict:
    "One training run; its settings line, median tokens/s after the warm-up steps, and wall time."
    args = [sys.executable, '-m', 'gpt2_nb.train', '--data', str(data), '--out', str(out), '--device', 'cpu', '--max-steps', str(steps),
            '--eval-every', str(steps), '--ckpt-every', str(steps), '--eval-batches', '2', '--log-every', str(steps), *flags]
    t0 = time.time()
    r = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, env={**os.environ, 'PYTHONUNBUFFERED': '1'})
    if r.returncode != 0: raise SystemExit(f"{' '.join(flags) or 'default'} failed: {(r.stderr.strip().splitlines() or [''])[-1]}")
    recs = [json.loads(l) for l in (out/'log.jsonl').read_text().splitlines()]
    cfg = json.loads((out/'config.json').read_text())['settings']
    line = next(l for l in r.stdout.splitlines() if l.startswith('settings: '))
    return dict(flags=' '.join(flags) or '(none: the default)', settings=line, precision=cfg['precision'], compile=cfg['compile'],
                loss=cfg['loss'], tps=[x['tokens_per_sec'] for x in recs if 'tokens_per_sec' in x], wall_s=time.time() - t0)


def main():
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--steps', type=int, default=120, help='steps per run')
    p.add_argument('--skip', type=int, default=20, help='first steps left out of the median (compiling, warming up)')
    p.add_argument('--all', action='store_true', help='also the bf16 and tf32 modes on a CPU without bf16 units')
    p.add_argument('--json', default=None, help='also write the results to this JSON file')
    a = p.parse_args()
    hw = hardware('cpu')
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        from gpt2_nb.data import prepare
        import contextlib, io
        with contextlib.redirect_stdout(io.StringIO()): prepare(out=d/'data')  # the bundled sample, as the main job uses it
        precisions = ['fp32'] + (['tf32', 'bf16'] if hw['bf16'] or a.all else [])
        modes = [[]] + [['--precision', pr, comp, '--loss', loss] for pr in precisions for comp in ('--no-compile', '--compile')
                        for loss in ('chunked', 'plain')]
        rows = []
        for i, flags in enumerate(modes):
            r = run(d/f'run{i}', d/'data', a.steps, flags)
            r['median_tps'] = statistics.median(r['tps'][a.skip:])
            rows.append(r)
            print(f"  {r['flags']:48} {r['median_tps']:8,.0f} tokens/s  (run {r['wall_s']:.0f} s)", flush=True)
    default, explicit = rows[0], rows[1:]
    best = max(explicit, key=lambda r: r['median_tps'])
    print(f"\n{hw['name']} ({' '.join(f for f in ('avx2', 'avx512f', 'avx512_bf16', 'amx_bf16') if f in cpu_flags())}); {date.today()}")
    print(f"main job step (tiny preset, 8x128 tokens), median tokens/s over steps {a.skip + 1}-{a.steps}:")
    print(f"default: {default['settings']}")
    print(f"default {default['median_tps']:,.0f} tokens/s = {default['median_tps'] / best['median_tps']:.2f}x the fastest explicit mode "
          f"({best['flags']}: {best['median_tps']:,.0f})")
    if a.json:
        with open(a.json, 'w') as f: json.dump(dict(date=str(date.today()), cpu=hw['name'], steps=a.steps, skip=a.skip, rows=rows), f, indent=2)


if __name__ == '__main__': main()
