"""Build `data/sample.parquet`, the course's bundled sample, from Debian's King James Bible (see data/README.md).

Usage (on Debian or Ubuntu, from the repository root, with gpt2_nb installed):
    python data/make_sample.py [--work DIR] [--out data/sample.parquet]

It runs `apt-get download bible-kjv bible-kjv-text` into DIR unless the .deb files are already there, unpacks them
with `dpkg -x`, prints the whole text with the package's own `bible` program, cuts it into one document per chapter
(verse numbers dropped, verses joined into one paragraph), shuffles the chapters with a fixed seed and writes a parquet
file in Cosmopedia-100k's schema. The same .deb files give the same parquet file.
"""
import argparse, os, random, re, subprocess, tempfile
from pathlib import Path

import pyarrow as pa, pyarrow.parquet as pq

from gpt2_nb.tokenizer import get_encoding

PACKAGES = ('bible-kjv', 'bible-kjv-text')  # the `bible` program, and its compressed text and concordance
SEED = 0
HEADING = re.compile(r'((?:[1-3] )?[A-Z][A-Za-z ]+?) (\d+)')  # 'Genesis 1', '1 Samuel 3', 'Song of Solomon 2'
VERSE = re.compile(r'\s+(\d+) (.*)')                          # '  3 And God said, Let there be light: ...'

def unpack(work:Path) -> Path:
    "Download (if needed) and unpack the packages under `work/root`; return that folder."
    for pkg in PACKAGES:
        if not list(work.glob(f'{pkg}_*.deb')): subprocess.run(['apt-get', 'download', pkg], cwd=work, check=True)
    root = work/'root'
    for deb in sorted(work.glob('*.deb')):
        print('using', deb.name)
        subprocess.run(['dpkg', '-x', str(deb), str(root)], check=True)
    return root

def bible_text(root:Path) -> str:
    "The whole King James Version as the package's `bible` program prints it (chapter headings, numbered verses)."
    env = {**os.environ, 'COLUMNS': '80'}
    out = subprocess.run([str(root/'usr/bin/bible'), '-p', str(root/'usr/lib'), 'Gen1:1-Rev22:21'],
                         capture_output=True, text=True, check=True, env=env)
    return out.stdout

def chapters(text:str) -> list[dict]:
    "Split the printed text into chapters: [{book, chapter, verses}], verse numbers dropped, wrapped lines rejoined."
    lines, out = text.splitlines(), []
    for i, l in enumerate(lines):
        if (m := HEADING.fullmatch(l)) and (i == 0 or not lines[i - 1].strip()):
            out.append(dict(book=m.group(1), chapter=int(m.group(2)), verses=[]))
        elif not l.strip(): continue
        elif v := VERSE.fullmatch(l): out[-1]['verses'].append(v.group(2).strip())
        else: out[-1]['verses'][-1] += ' ' + l.strip()  # the rest of a wrapped verse
    return out

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--work', help='folder for the .deb files (default: a new temporary folder)')
    p.add_argument('--out', default=str(Path(__file__).resolve().parent/'sample.parquet'))
    a = p.parse_args()
    work = Path(a.work or tempfile.mkdtemp()); work.mkdir(parents=True, exist_ok=True)
    chs = chapters(bible_text(unpack(work)))
    assert (len(chs), sum(len(c['verses']) for c in chs)) == (1189, 31102), "the KJV has 1,189 chapters and 31,102 verses"
    docs = [dict(prompt=f"The King James Version of the Bible: {c['book']}, chapter {c['chapter']}",
                 text=' '.join(c['verses']) + '\n', seed_data='bible_kjv', format='scripture', audience='general') for c in chs]
    random.Random(SEED).shuffle(docs)  # so the first documents (the validation split) are a fair sample of all
    enc = get_encoding()
    for d in docs: d['text_token_length'] = len(enc.encode_ordinary(d['text']))
    cols = ['prompt', 'text_token_length', 'text', 'seed_data', 'format', 'audience']  # Cosmopedia-100k's order
    schema = pa.schema([(c, pa.int64() if c == 'text_token_length' else pa.string()) for c in cols])
    table = pa.Table.from_pylist([{c: d[c] for c in cols} for d in docs], schema=schema)
    pq.write_table(table, a.out, compression='zstd', compression_level=19, row_group_size=256)
    tokens = sum(d['text_token_length'] for d in docs)
    print(f"{len(docs)} documents (chapters), {tokens:,} GPT-2 tokens (+{len(docs):,} EOT), "
          f"{sum(len(d['text'].encode()) for d in docs):,} bytes of text, {Path(a.out).stat().st_size:,} bytes on disk -> {a.out}")

if __name__ == '__main__': main()
