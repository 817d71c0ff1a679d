"""Throughput of `gpt2_nb.data.prepare` with 2 workers vs single-process `encode_ordinary`, on the same documents.

    python bench/prepare_throughput.py [--repeat 4] [--runs 3] [--workers 2]

The text is the bundled sample repeated `--repeat` times (about 2 MB of text each), written as one parquet file.
`prepare` is timed end to end: reading the parquet, tokenizing in the pool, splitting, writing shards (with fsync),
hashing, the manifest. The baseline is `encode_ordinary` on each text, in a loop in this process, on the texts already in memory.
Runs alternate between the two and the best of `--runs` is reported, since other work on the machine only slows runs.
"""
import argparse, datetime, os, platform, resource, statistics, tempfile, time
from pathlib import Path

import pyarrow as pa, pyarrow.parquet as pq

from gpt2_nb.data import SAMPLE_PATH, prepare
from gpt2_nb.tokenizer import get_encoding

def cpu_name():
    try: return next(l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name'))
    except (OSError, StopIteration): return platform.processor() or platform.machine()

def cpu_seconds():
    "CPU seconds used so far by this process and by its finished children (the pool's workers)."
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime, c.ru_utime + c.ru_stime

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--repeat', type=int, default=4, help='copies of the sample in the benchmark text')
    p.add_argument('--runs', type=int, default=3, help='timed runs of each; the best is reported')
    p.add_argument('--workers', type=int, default=2)
    a = p.parse_args()
    tmp = Path(tempfile.mkdtemp())
    table = pq.read_table(SAMPLE_PATH)
    pq.write_table(pa.concat_tables([table] * a.repeat), tmp/'bench.parquet')
    texts = pq.read_table(tmp/'bench.parquet', columns=['text']).column(0).to_pylist()
    enc = get_encoding()
    n_tokens = sum(len(enc.encode_ordinary(t)) + 1 for t in texts)  # + 1: the EOT before each document
    mb = sum(len(t.encode()) for t in texts) / 1e6
    base, prep, base_cpu, prep_cpu = [], [], [], []
    load = os.getloadavg()[0]
    for r in range(a.runs):
        c0 = cpu_seconds(); t0 = time.perf_counter()
        n = sum(len(enc.encode_ordinary(t)) + 1 for t in texts)  # each document's tokens are dropped at once
        base.append(time.perf_counter() - t0); c1 = cpu_seconds(); base_cpu.append(c1[0] - c0[0])
        assert n == n_tokens
        out = tmp/f'out{r}'
        t0 = time.perf_counter(); m = prepare(tmp/'bench.parquet', out, workers=a.workers); prep.append(time.perf_counter() - t0)
        c2 = cpu_seconds(); prep_cpu.append((c2[0] - c1[0], c2[1] - c1[1]))
        assert m['tokens']['train'] + m['tokens']['val'] == n_tokens
    b, q = n_tokens / min(base) / 1e6, n_tokens / min(prep) / 1e6
    print(f"machine: {cpu_name()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, {datetime.date.today()}")
    print(f"text: {len(texts):,} documents, {mb:.1f} MB, {n_tokens:,} tokens")
    print(f"encode_ordinary, 1 process:      {b:.2f} Mtok/s (best of {a.runs}; median {n_tokens / statistics.median(base) / 1e6:.2f})")
    print(f"prepare, {a.workers} workers (end to end): {q:.2f} Mtok/s (best of {a.runs}; median {n_tokens / statistics.median(prep) / 1e6:.2f})")
    print(f"ratio: {q / b:.2f}x (target >= 1.8x)")
    pc, wc = min(prep_cpu, key=sum)
    print(f"CPU seconds: encode_ordinary {min(base_cpu):.2f}; prepare {pc + wc:.2f} (parent {pc:.2f}, workers {wc:.2f}) "
          f"-> at most {a.workers * min(base_cpu) / (pc + wc):.2f}x on {a.workers} otherwise idle cores")
    print(f"load average (1 min) before: {load:.2f}, after: {os.getloadavg()[0]:.2f} (other work on the machine lowers the ratio)")

if __name__ == '__main__': main()
