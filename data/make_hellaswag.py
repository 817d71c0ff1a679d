"""Build `data/hellaswag_kjv.jsonl`: multiple-choice sentence completions in HellaSwag's schema, made from the held-out
chapters of the bundled sample (see data/README.md).

Usage (from the repository root, with gpt2_nb installed):
    python data/make_hellaswag.py [--n 200] [--out data/hellaswag_kjv.jsonl]

Each item is one sentence of a chapter followed by the first words of the next sentence (`ctx`), and four endings:
the true rest of that next sentence and the rests of three sentences of *other* chapters with about as many tokens
(within 3, as often shorter as longer).
Only chapters that `gpt2nb_prepare` puts in the validation split (the first documents of the sample, well inside its
default val budget) are used, so the main job never trains on them. The same sample and seed give the same file.
"""
import argparse, json, random, re
from pathlib import Path

import pyarrow.parquet as pq

from gpt2_nb.data import default_val_tokens
from gpt2_nb.tokenizer import get_encoding

SEED = 0
SENTENCE = re.compile(r'(?<=[.?!])\s+(?=[A-Z])')  # a sentence ends at . ? or ! followed by a capital

def val_chapters(table, enc) -> list[dict]:
    "The sample's leading chapters that lie in the first half of the default val budget."
    texts = table.column('text').to_pylist()
    budget = default_val_tokens(sum(len(t.encode()) for t in texts)) // 2
    out, used = [], 0
    for prompt, text in zip(table.column('prompt').to_pylist(), texts):
        used += len(enc.encode_ordinary(text)) + 1  # + the EOT between documents
        if used > budget: break
        out.append(dict(name=prompt.split(': ', 1)[1], sentences=SENTENCE.split(text.strip())))
    return out

def split_sentence(s:str, rng) -> tuple[str, str] | None:
    "A sentence cut into (first words, the rest), the cut 30-50% of the way in; None if it is too short to cut."
    w = s.split()
    if len(w) < 8: return None
    k = rng.randint(max(2, round(0.3 * len(w))), round(0.5 * len(w)))
    return ' '.join(w[:k]), ' '.join(w[k:])

def make_items(chapters:list[dict], n:int, enc, seed:int=SEED, spread:int=3) -> list[dict]:
    """`n` items; each wrong ending is the rest of a sentence of another chapter whose length in tokens differs from the
    right one's by d, drawn uniformly from -spread..spread: each wrong ending is as often shorter than the right one as
    longer, so length says nothing about which is right (the right one is in the middle, rarely the shortest)."""
    rng = random.Random(seed)
    cands = []  # (chapter index, previous sentence, first words, rest)
    for ci, ch in enumerate(chapters):
        for prev, s in zip(ch['sentences'], ch['sentences'][1:]):
            if (cut := split_sentence(s, rng)) and len(prev.split()) <= 40: cands.append((ci, prev, *cut))
    rng.shuffle(cands)
    by_len = {}  # token length of a rest -> [(chapter index, rest)]
    for ci, _, _, rest in cands: by_len.setdefault(len(enc.encode_ordinary(' ' + rest)), []).append((ci, rest))
    items = []
    for ci, prev, head, rest in cands:
        if len(items) == n: break
        L, endings = len(enc.encode_ordinary(' ' + rest)), []
        if not all(len(by_len.get(L + d, [])) >= 4 for d in range(-spread, spread + 1)): continue  # lengths on both sides
        for _ in range(50):  # draw a length offset, then a sentence of that length
            if len(endings) == 3: break
            pool = [r for c, r in by_len.get(L + rng.randint(-spread, spread), []) if c != ci and r != rest and r not in endings]
            if pool: endings.append(rng.choice(pool))
        if len(endings) < 3: continue
        label = rng.randrange(4)
        endings.insert(label, rest)
        items.append(dict(ind=len(items), activity_label=chapters[ci]['name'], ctx_a=prev, ctx_b=head, ctx=f'{prev} {head}',
                          split='val', split_type='indomain', label=label, endings=endings,
                          source_id=f"kjv~{chapters[ci]['name']}"))
    assert len(items) == n, f"only {len(items)} items could be made"
    return items

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    root = Path(__file__).resolve().parent
    p.add_argument('--sample', default=str(root/'sample.parquet'))
    p.add_argument('--n', type=int, default=200)
    p.add_argument('--out', default=str(root/'hellaswag_kjv.jsonl'))
    a = p.parse_args()
    enc = get_encoding()
    chapters = val_chapters(pq.read_table(a.sample), enc)
    items = make_items(chapters, a.n, enc)
    Path(a.out).write_text(''.join(json.dumps(it) + '\n' for it in items))
    print(f"{len(items)} items from {len(chapters)} held-out chapters written to {a.out}")

if __name__ == '__main__': main()
