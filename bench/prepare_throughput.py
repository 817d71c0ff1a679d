"""Throughput of `gpt2_nb.data.prepare` with 2 workers vs single-process `encode_ordinary`, on the same documents.

    python bench/prepare_throughput.py [--repeat 8] [--runs 3] [--workers 2]

The text is the bundled sample repeated `--repeat` times (about 2 MB of text each), written as one parquet file.
- baseline: `encode_ordinary` on each text in a loop, in this process, on texts already in memory;
- prepare: `prepare(..., workers=2)` end to end: reading the parquet, tokenizing in the pool, splitting, writing
  shards (with fsync) and the manifest;
- prepare with 1 worker: the same job without a pool, which shows what everything but tokenizing costs;
- machine check: the same loop as the baseline in `--workers` independent processes at once. No pipeline with that
  many workers can beat it, so it shows how much parallel speed the machine really offers at the moment (other
  programs, or CPUs that share a core, give less than `--workers` times).
Runs alternate and the best of `--runs` is reported, since other work on the machine only ever slows a run. CPU seconds
(parent and workers) are reported too: they say what the pipeline costs whatever else the machine is doing.
"""
import argparse, datetime, multiprocessing as mp, os, platform, resource, statistics, tempfile, time
from pathlib import Path

import pyarrow as pa, pyarrow.parquet as pq

from gpt2_nb.data import SAMPLE_PATH, prepare
from gpt2_nb.tokenizer import get_encoding
from gpt2_nb.precision import cpu_name

TEXTS = None

def load_texts(path):
    global TEXTS
    TEXTS = pq.read_table(path, columns=['text']).column(0).to_pylist()

def encode_all(_=None) -> int:
    "The baseline: encode every text in this process, dropping each document's tokens at once."
    enc = get_encoding()
    return sum(len(enc.encode_ordinary(t)) + 1 for t in TEXTS)  # + 1: the EOT before each document

def cpu_seconds():
    "CPU seconds used so far by this process and by its finished children (the pool's workers)."
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime, c.ru_utime + c.ru_stime

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--repeat', type=int, default=8, help='copies of the sample in the benchmark text')
    p.add_argument('--runs', type=int, default=3, help='timed runs of each; the best is reported')
    p.add_argument('--workers', type=int, default=2)
    a = p.parse_args()
    tmp = Path(tempfile.mkdtemp())
    pq.write_table(pa.concat_tables([pq.read_table(SAMPLE_PATH)] * a.repeat), tmp/'bench.parquet')
    load_texts(tmp/'bench.parquet')
    n_tokens = encode_all()
    mb = sum(len(t.encode()) for t in TEXTS) / 1e6
    base, prep, prep1, both, base_cpu, prep_cpu = [], [], [], [], [], []
    load = os.getloadavg()[0]
    with mp.get_context().Pool(a.workers, initializer=load_texts, initargs=(tmp/'bench.parquet',)) as pool:
        pool.map(abs, range(a.workers))  # wait until every process has loaded the texts
        for r in range(a.runs):
            c0 = cpu_seconds(); t0 = time.perf_counter()
            assert encode_all() == n_tokens
            base.append(time.perf_counter() - t0); c1 = cpu_seconds(); base_cpu.append(c1[0] - c0[0])
            t0 = time.perf_counter(); m = prepare(tmp/'bench.parquet', tmp/f'out{r}', workers=a.workers); prep.append(time.perf_counter() - t0)
            c2 = cpu_seconds(); prep_cpu.append((c2[0] - c1[0], c2[1] - c1[1]))
            assert m['tokens']['train'] + m['tokens']['val'] == n_tokens
            t0 = time.perf_counter(); pool.map(encode_all, range(a.workers), chunksize=1); both.append(time.perf_counter() - t0)
            t0 = time.perf_counter(); prepare(tmp/'bench.parquet', tmp/f'one{r}', workers=1); prep1.append(time.perf_counter() - t0)
    rate = lambda ts, n=n_tokens: (n / min(ts) / 1e6, n / statistics.median(ts) / 1e6)
    (b, bm), (q, qm), (q1, q1m), (c, cm) = rate(base), rate(prep), rate(prep1), rate(both, a.workers * n_tokens)
    pc, wc = min(prep_cpu, key=sum)
    print(f"machine: {cpu_name()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, {datetime.date.today()}")
    print(f"text: {len(TEXTS):,} documents, {mb:.1f} MB, {n_tokens:,} tokens; best (median) of {a.runs} runs")
    print(f"encode_ordinary, 1 process:          {b:.2f} ({bm:.2f}) Mtok/s")
    print(f"prepare, 1 worker (no pool):         {q1:.2f} ({q1m:.2f}) Mtok/s = {q1 / b:.2f}x (reading, splitting, writing cost the rest)")
    print(f"prepare, {a.workers} workers, end to end:    {q:.2f} ({qm:.2f}) Mtok/s")
    print(f"ratio prepare / encode_ordinary:     {q / b:.2f}x (target >= 1.8x)")
    print(f"machine check, {a.workers} independent encoders: {c:.2f} ({cm:.2f}) Mtok/s = {c / b:.2f}x one process "
          f"(the most {a.workers} workers could reach now)")
    print(f"CPU seconds: encode_ordinary {min(base_cpu):.2f}; prepare {pc + wc:.2f} (parent {pc:.2f}, workers {wc:.2f})")
    print(f"load average (1 min) before: {load:.2f}, after: {os.getloadavg()[0]:.2f}")

if __name__ == '__main__': main()
