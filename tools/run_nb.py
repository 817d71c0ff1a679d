"""Record notebook outputs: execute notebooks in place, as `nbdev_test` runs them but at full size, and save the outputs.

    python tools/run_nb.py nbs/02_data.ipynb [nbs/03_loader.ipynb ...] [--flags slow] [--timeout 600]

- Cells run in order in one IPython shell per notebook (execnb's `CaptureShell`, as `nbdev_test` uses), each notebook in
  its own process, from the notebook's folder.
- `IN_TEST` is unset, so `in_test()` is false and the full sizes run (nbdev_test sets it to run small sizes).
- Cells flagged with one of settings.ini's `tst_flags` (notest, slow, cuda) are skipped unless named in `--flags`, and
  `#| eval: false` cells never run, as under nbdev_test; a skipped cell keeps the outputs it had. Cells of nothing but
  `show_doc(...)` calls are not run and keep no outputs (the docs build renders them). A cell that runs gets
  exactly its new outputs (none if it prints nothing).
- Figures are recorded as plain PNG (not execnb's default 'retina', whose width metadata makes Quarto give the `<img>`
  a fixed pixel width that overflows the docs column).
- At the first error the traceback is printed, that notebook is left unchanged, and no later notebook runs (exit 1).
  On success the notebook is written and `nbdev_clean` tidies it (execution counts, metadata).
"""
import argparse, os, subprocess, sys, time
from configparser import ConfigParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def tst_flags():
    cfg = ConfigParser(); cfg.read(ROOT/'settings.ini')
    return set(cfg['DEFAULT'].get('tst_flags', '').split())


def run_one(fn: Path, flags=(), timeout=None) -> bool:
    "Execute notebook `fn`; write it back with its new outputs if every cell ran. True on success."
    os.environ.pop('IN_TEST', None)
    from execnb.nbio import read_nb, write_nb
    from execnb.shell import CaptureShell
    from fastcore.xtras import working_directory
    from nbdev.process import NBProcessor
    from nbdev.clean import nbdev_clean

    fn = fn.resolve()
    nb = read_nb(fn)
    parsed = read_nb(fn); NBProcessor(fn, [], nb=parsed).process()  # directives_ of each cell (it edits the sources)
    skip_flags = tst_flags() - set(flags)
    skipped, ran = [], []

    def skip(cell):
        if cell.cell_type != 'code': return True
        d = getattr(parsed.cells[cell.idx_], 'directives_', {}) or {}
        if all(l.startswith('show_doc(') for l in cell.source.splitlines() if l.strip() and not l.startswith('#')):
            cell.outputs = []  # the docs build renders show_doc itself: a recorded copy would only go stale
            return True
        if 'nbdev_export(' in cell.source or d.get('eval:', [''])[0].lower() == 'false' or skip_flags & d.keys():
            if cell.source.strip(): skipped.append(cell.idx_)
            return True
        cell.outputs = []  # a cell that runs keeps only what it outputs now
        ran.append(cell.idx_)
        return False

    shell = CaptureShell(fn, mpl_format='png', timeout=timeout)
    t0 = time.time()
    try:
        with working_directory(fn.parent): shell.run_all(nb, exc_stop=True, preproc=skip)
    except Exception:
        sys.stderr.write(shell.prettytb(fname=fn) + '\n')
        print(f"{fn.name}: error in cell {ran[-1] if ran else '?'} after {time.time() - t0:.0f}s: notebook left unchanged", file=sys.stderr)
        return False
    write_nb(nb, fn)
    nbdev_clean(fname=str(fn))
    print(f"{fn.name}: {len(ran)} cells run, {len(skipped)} skipped (flags {sorted(skip_flags) or 'none'}), {time.time() - t0:.0f}s: outputs saved")
    return True


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('notebooks', nargs='+', type=Path)
    ap.add_argument('--flags', default='', help="run cells with these tst_flags too, e.g. 'slow' (space-separated)")
    ap.add_argument('--timeout', type=int, default=None, help='seconds allowed per cell (default: none)')
    ap.add_argument('--one', action='store_true', help=argparse.SUPPRESS)  # internal: run in this process
    args = ap.parse_args()
    for nb in args.notebooks:
        if not nb.exists(): sys.exit(f"run_nb: no notebook {nb}")
    if args.one:
        sys.exit(0 if run_one(args.notebooks[0], args.flags.split(), args.timeout) else 1)
    for nb in args.notebooks:  # each notebook in a fresh process, as nbdev_test does, so no state leaks between them
        cmd = [sys.executable, __file__, str(nb), '--one', '--flags', args.flags]
        if args.timeout: cmd += ['--timeout', str(args.timeout)]
        if subprocess.run(cmd).returncode != 0:
            sys.exit(f"run_nb: stopped at {nb}; notebooks after it were not run")
