"""Check that every training command in README.md plans the run it claims: each is run with `--dry-run`.

    python tools/readme_plans.py [--data data/shards] [--readme README.md]

A training command is a line of a code block that starts with `gpt2nb_train` or with `torchrun ... -m gpt2_nb.train`
(a line ending in a backslash continues on the next). Lines with `...` are sketches, not commands, and are skipped.
Each command runs as written, except that `--data` points at a folder prepared here (the README's own data sets need
a network) and `--dry-run` is added. The check: exit status 0, every plan key the recipes promise, nothing written
into `--out`, and for the gpt2 presets the GPT-3 paper's settings (seq 1024, total batch 2^19 or 2^20).
"""
import argparse, os, re, shlex, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KEYS = ('preset', 'params', 'lr', 'warmup_steps', 'max_steps', 'epochs', 'total_batch', 'micro_batch', 'accum_steps',
        'tokens', 'weight_decay', 'precision', 'memory_per_device_gib', 'hours_on_A100', 'hours_on_H100')
GPT2_LR = {'gpt2': '0.0006', 'gpt2-medium': '0.0003', 'gpt2-large': '0.00025', 'gpt2-xl': '0.0002'}

def train_commands(readme:str) -> list[str]:
    "The training command lines of the README's code blocks, continuation lines joined."
    cmds, in_code, buf = [], False, ''
    for line in readme.splitlines():
        if line.strip().startswith('```'): in_code, buf = not in_code, ''; continue
        if not in_code: continue
        buf += line.rstrip()
        if buf.endswith('\\'): buf = buf[:-1] + ' '; continue
        cmd, buf = buf.strip(), ''
        cmd = cmd.split(' #')[0].strip()  # a trailing comment
        if '...' in cmd: continue
        if cmd.startswith('gpt2nb_train') or (cmd.startswith('torchrun') and '-m gpt2_nb.train' in cmd): cmds.append(cmd)
    return cmds

def with_data(args:list[str], data:str) -> list[str]:
    "The arguments with --data replaced (or added) and --dry-run added."
    out, skip = [], False
    for a in args:
        if skip: skip = False; continue
        if a == '--data': skip = True; continue
        if a.startswith('--data='): continue
        out.append(a)
    return out + ['--data', data] + ([] if '--dry-run' in out else ['--dry-run'])

def check(cmd:str, data:str) -> list[str]:
    "Problems of one command's plan (empty: it is right)."
    args = with_data(shlex.split(cmd), data)
    out_dir = next((args[i + 1] for i, a in enumerate(args[:-1]) if a == '--out'), None)
    existed = out_dir is not None and Path(out_dir).exists()
    r = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, env={**os.environ, 'PYTHONUNBUFFERED': '1'})
    if r.returncode != 0: return [f"exit status {r.returncode}: {(r.stderr.strip().splitlines() or [''])[-1]}"]
    plan = dict(l.split(': ', 1) for l in r.stdout.splitlines() if ': ' in l)
    problems = [f"no '{k}' line in the plan" for k in KEYS if k not in plan]
    preset = plan.get('preset', '').split(' ')[0]
    if preset in GPT2_LR:
        want = dict(lr=GPT2_LR[preset], seq_len='1024', total_batch=('524288', '1048576'))
        for k, v in want.items():
            got = plan.get(k, '').split(' ')[0]
            if got not in (v if isinstance(v, tuple) else (v,)) and not re.search(rf'--{k.replace("_", "-")}\b', cmd):
                problems.append(f"{k} is {got}, the {preset} recipe says {v}")
    if out_dir is not None and not existed and Path(out_dir).exists(): problems.append(f"--dry-run created {out_dir}")
    print(f"$ {shlex.join(args)}")
    print('  ' + ' | '.join(f"{k}: {plan[k]}" for k in ('preset', 'lr', 'total_batch', 'max_steps', 'world_size',
                                                        'memory_per_device_gib', 'hours_on_H100') if k in plan))
    return problems

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--data', default='data/shards', help='a folder written by gpt2nb_prepare (default: the main job\'s)')
    p.add_argument('--readme', default=str(ROOT/'README.md'))
    a = p.parse_args()
    cmds = train_commands(Path(a.readme).read_text())
    if not cmds: sys.exit("README.md has no training command")
    bad = 0
    for c in cmds:
        for prob in check(c, a.data):
            print(f"README command `{c}`: {prob}", file=sys.stderr); bad += 1
    if bad: sys.exit(1)
    print(f"readme_plans passed: {len(cmds)} training commands planned with --dry-run")

if __name__ == '__main__': main()
