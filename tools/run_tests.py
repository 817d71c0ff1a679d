"""The README's test command: every notebook (as `nbdev_test` runs them), then the tests in `tests/`, with progress.

    python tools/run_tests.py                      # notebooks, then pytest; exit status: the worse of the two
    python tools/run_tests.py --flags slow         # also the cells flagged slow (as nbdev_test --flags slow)
    python tools/run_tests.py --isa avx2           # the same, as on a CPU of a lower instruction-set level (below)
    python tools/run_tests.py --isa avx2 --notebooks 07 08 13 --pytest tests/test_train.py tests/test_speed.py
    python tools/run_tests.py --notebooks 07 10 --pytest tests/test_train.py -k auto   # a part of it

Both halves always run, so a failing notebook does not hide the pytest results. Each notebook prints a line when it
ends (passed or failed, its time); pytest prints each test as it ends. At the end: both results and the wall time.

`--isa` runs everything in processes whose PyTorch and oneDNN stay below an instruction-set level — how one machine
checks the code paths of CPUs it is not: `avx512_bf16` (AVX-512 with bfloat16 dot products, no AMX tiles) and `avx2`.
Both libraries read these variables once, at start-up, so they are set before anything imports torch. Each level gets
its own TorchInductor cache: compiled kernels are cached without the level in their key, and a kernel built for one
level must not run under another.
"""
import argparse, multiprocessing, os, subprocess, sys, tempfile, time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ISA_LEVELS = {  # what a CPU of each kind runs, set through the variables PyTorch, oneDNN and MKL read at start-up
    'avx512_bf16': dict(ONEDNN_MAX_CPU_ISA='AVX512_CORE_BF16'),
    'avx2': dict(ATEN_CPU_CAPABILITY='avx2', ONEDNN_MAX_CPU_ISA='AVX2', MKL_ENABLE_INSTRUCTIONS='AVX2'),
}
NEEDS = {'avx512_bf16': {'avx512_bf16'}, 'avx2': {'avx2'}}  # CPU flags a level needs to be emulated
# what depends on the CPU's kind: the lessons on speed and precision, the precision experiment, and the tests of the
# settings a run chooses (CI runs these at each level below its own CPU)
PRECISION_ARGS = '--notebooks 07 08 13 --pytest tests/test_train.py tests/test_speed.py'


def fmt(s: float) -> str: return f"{int(s // 60)}m{int(s % 60):02d}s" if s >= 60 else f"{s:.0f}s"


def cpu_flags() -> set:
    try:
        return next(set(l.split(':', 1)[1].split()) for l in open('/proc/cpuinfo') if l.startswith('flags'))
    except (OSError, StopIteration): return set()


def emulatable() -> list:
    "The ISA levels this CPU can run below its own: those whose instructions it has, minus its own top level."
    flags = cpu_flags()
    own = 'amx' if 'amx_bf16' in flags else 'avx512_bf16' if 'avx512_bf16' in flags else 'avx2' if 'avx2' in flags else None
    order = ['amx', 'avx512_bf16', 'avx2']
    return [l for l in order[order.index(own) + 1:] if NEEDS[l] <= flags] if own else []


def _test_one(fn: str, skip_flags: list, force_flags: list):
    "Run one notebook as nbdev_test does (in this worker process); (passed, seconds, error text)."
    import io, contextlib
    from nbdev.test import test_nb
    from nbdev.config import get_config
    err, main = io.StringIO(), sys.modules['__main__']
    try:
        with contextlib.redirect_stderr(err):
            ok, secs = test_nb(Path(fn), skip_flags=skip_flags, force_flags=force_flags, basepath=get_config().config_path)
    finally: sys.modules['__main__'] = main  # IPython's shell installs its own __main__; the next task is looked up here
    return ok, secs, err.getvalue()


def run_notebooks(names: list, flags: str, workers: int) -> bool:
    "Every notebook of nbs/ (or those whose names start with one of `names`), a line per notebook as it ends."
    from nbdev.config import get_config
    cfg = get_config()
    files = sorted(p for p in Path(cfg.nbs_path).glob('*.ipynb') if not p.name.startswith(('_', '.')))
    if names: files = [p for p in files if p.name.startswith(tuple(names))]
    skip, force = cfg.tst_flags.split(), flags.split()
    print(f"== notebooks: {len(files)}, {workers} at a time (cells flagged {' '.join(sorted(set(skip) - set(force)))} "
          f"skipped{'; ' + flags + ' run' if flags else ''})", flush=True)
    failed, t0 = [], time.time()
    os.chdir(cfg.nbs_path)
    # fork: workers start as copies of this process (as nbdev_test's do); a fresh interpreter would not find _test_one
    ctx = multiprocessing.get_context('fork' if 'fork' in multiprocessing.get_all_start_methods() else 'spawn')
    with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        jobs = {pool.submit(_test_one, str(f), skip, force): f for f in files}
        for i, job in enumerate(as_completed(jobs), 1):
            f = jobs[job]
            try: ok, secs, err = job.result()
            except Exception as e: ok, secs, err = False, 0.0, f"{type(e).__name__}: {e}"
            print(f"[{i:>2}/{len(files)}] {f.name:32} {'passed' if ok else 'FAILED'} in {fmt(secs)} "
                  f"({fmt(time.time() - t0)} so far)", flush=True)
            if not ok:
                failed.append(f.name)
                sys.stdout.write(err[-6000:] + '\n')
    os.chdir(ROOT)
    print(f"notebooks: {len(files) - len(failed)} passed, {len(failed)} failed{': ' + ', '.join(failed) if failed else ''} "
          f"in {fmt(time.time() - t0)}", flush=True)
    return not failed


def main(argv=None):
    p = argparse.ArgumentParser(prog='run_tests.py', description="Run the notebooks, then the tests in tests/.")
    p.add_argument('--flags', default='', help="cell flags to run that are normally skipped, e.g. 'slow'")
    p.add_argument('--isa', choices=tuple(ISA_LEVELS), help="run as on a CPU of this instruction-set level")
    p.add_argument('--notebooks', nargs='*', default=None, help="only the notebooks whose names start with these; "
                   "with no names, none")
    p.add_argument('--pytest', nargs=argparse.REMAINDER, default=None, help="the rest of the line is pytest's arguments "
                   "(default: tests); with none, no pytest")
    p.add_argument('--workers', type=int, default=os.cpu_count() or 1, help="notebooks run at a time")
    a = p.parse_args(argv)
    if a.isa and os.environ.get('GPT2NB_ISA') != a.isa:  # the variables must be there before torch is imported
        env = {**os.environ, **ISA_LEVELS[a.isa], 'GPT2NB_ISA': a.isa,
               'TORCHINDUCTOR_CACHE_DIR': str(Path(tempfile.gettempdir())/f'gpt2nb_inductor_{a.isa}')}
        print(f"== as a CPU of level {a.isa}: {' '.join(f'{k}={v}' for k, v in ISA_LEVELS[a.isa].items())}", flush=True)
        return subprocess.run([sys.executable, __file__, *(argv if argv is not None else sys.argv[1:])], env=env).returncode
    t0 = time.time()
    nb_ok = run_notebooks(a.notebooks or [], a.flags, a.workers) if a.notebooks != [] else True
    py_ok = True
    if a.pytest != []:
        args = a.pytest or ['tests']
        print(f"== pytest {' '.join(args)}", flush=True)
        py_ok = subprocess.run([sys.executable, '-m', 'pytest', '-v', '-p', 'no:cacheprovider', *args], cwd=ROOT).returncode == 0
    print(f"== {'passed' if nb_ok and py_ok else 'FAILED'}: notebooks {'passed' if nb_ok else 'FAILED'}, "
          f"pytest {'passed' if py_ok else 'FAILED'}, in {fmt(time.time() - t0)}"
          f"{' (as ' + a.isa + ')' if a.isa else ''}", flush=True)
    return 0 if nb_ok and py_ok else 1


if __name__ == '__main__': sys.exit(main())
