"""Build `data/sample.parquet`, the course's bundled sample, from two Debian packages (see data/README.md).

Usage (on Debian or Ubuntu, from the repository root, with gpt2_nb installed):
    python data/make_sample.py [--work DIR] [--out data/sample.parquet]

It runs `apt-get download jargon-text python3.11-doc` into DIR unless the .deb files are already there, unpacks
them with `dpkg -x`, cuts the texts into documents, shuffles them with a fixed seed and writes a parquet file in
Cosmopedia-100k's schema. The same .deb files give the same parquet file.
"""
import argparse, glob, random, re, subprocess, tempfile, textwrap
from pathlib import Path

import pyarrow as pa, pyarrow.parquet as pq

from gpt2_nb.tokenizer import get_encoding

PACKAGES = ('jargon-text', 'python3.11-doc')
PYDOC_PARTS = ('tutorial/*.rst.txt', 'faq/*.rst.txt', 'glossary.rst.txt')  # prose-heavy parts of the Python docs
SEED = 0

def unpack(work:Path) -> Path:
    "Download (if needed) and unpack the two packages under `work/root`; return that folder."
    for pkg in PACKAGES:
        if not list(work.glob(f'{pkg}_*.deb')): subprocess.run(['apt-get', 'download', pkg], cwd=work, check=True)
    root = work/'root'
    for deb in sorted(work.glob('*.deb')):
        print('using', deb.name)
        subprocess.run(['dpkg', '-x', str(deb), str(root)], check=True)
    return root

def tidy(text:str) -> str:
    "Strip trailing spaces and collapse runs of blank lines."
    text = '\n'.join(l.rstrip() for l in text.splitlines())
    return re.sub(r'\n{3,}', '\n\n', text).strip('\n') + '\n'

def centered(lines, title) -> int:
    "Index of the centred heading `title` (a part title, indented by many spaces)."
    return next(i for i, l in enumerate(lines) if ' '.join(l.split()) == title and l.startswith(' ' * 10))  # titles use no-break spaces

def is_heading(l:str) -> bool: return bool(l) and l[0] not in ' │┌├└'

def sections(lines):
    "Split lines at column-0 headings (chapters, appendix sections) into (heading, text); drop tables of contents."
    out, cur = [], None
    for l in lines:
        if is_heading(l): cur = [l]; out.append(cur)
        elif cur is not None: cur.append(l)
    docs = []
    for heading, *body in out:
        kept, skipping = [], False
        for l in body:
            if l.strip() == 'Table of Contents': skipping = True; continue
            if skipping and (not l.strip() or len(l.strip()) <= 45): continue  # the titles listed in a TOC
            skipping = False; kept.append(l)
        docs.append((' '.join(heading.split()), tidy(heading.strip() + '\n\n' + textwrap.dedent('\n'.join(kept)))))
    return docs

def jargon_documents(path:Path):
    "The Jargon File 4.4.7 as documents: the welcome page, each chapter section, each lexicon entry, each appendix section."
    import gzip
    lines = gzip.decompress(path.read_bytes()).decode('utf-8').splitlines()
    welcome = next(i for i, l in enumerate(lines) if l.strip() == 'Welcome to the Jargon File' and l.startswith(' ' * 10))
    p1, p2, p3 = (centered(lines, t) for t in ('Part I. Introduction', 'Part II. The Jargon Lexicon', 'Part III. Appendices'))
    docs = [('Welcome to the Jargon File', 'essay', tidy('Welcome to the Jargon File\n\n' + textwrap.dedent('\n'.join(lines[welcome+1:p1]))))]
    docs += [(h, 'essay', t) for h, t in sections(lines[p1+1:p2])]
    entry, cur = re.compile(r'^   :(.+?):'), None
    for l in lines[p2+1:p3] + ['  END']:
        if m := entry.match(l):
            if cur: docs.append(cur)
            cur = [m.group(1), 'glossary entry', [l]]
        elif re.fullmatch(r'  \S+', l):  # a letter heading: a per-letter index of headwords follows, not text
            if cur: docs.append(cur)
            cur = None
        elif cur: cur[2].append(l)
    docs = [(h, f, tidy(textwrap.dedent('\n'.join(t)))) if isinstance(t, list) else (h, f, t) for h, f, t in docs]
    docs += [(h, 'essay', t) for h, t in sections(lines[p3+1:])]
    return [dict(prompt=f"The Jargon File, version 4.4.7: {'entry' if f == 'glossary entry' else 'section'} '{h}'",
                 text=t, seed_data='jargon_file_4.4.7', format=f, audience='general') for h, f, t in docs]

def pydoc_documents(sources:Path):
    "Prose parts of Python 3.11's documentation, reStructuredText as written, one document per file."
    files = sorted(f for pat in PYDOC_PARTS for f in glob.glob(str(sources/pat)))
    return [dict(prompt=f"Python 3.11 documentation, source of {Path(f).relative_to(sources).as_posix().removesuffix('.txt')}",
                 text=tidy(Path(f).read_text('utf-8')), seed_data='python_3.11_docs', format='reST documentation',
                 audience='programmers') for f in files]

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--work', help='folder for the .deb files (default: a new temporary folder)')
    p.add_argument('--out', default=str(Path(__file__).resolve().parent/'sample.parquet'))
    a = p.parse_args()
    work = Path(a.work or tempfile.mkdtemp()); work.mkdir(parents=True, exist_ok=True)
    root = unpack(work)
    docs = jargon_documents(root/'usr/share/doc/jargon-text/jargon.txt.gz')
    n_jargon = len(docs)
    docs += pydoc_documents(root/'usr/share/doc/python3.11/html/_sources')
    random.Random(SEED).shuffle(docs)  # so the first documents (the validation split) are a fair sample of all
    enc = get_encoding()
    for d in docs: d['text_token_length'] = len(enc.encode_ordinary(d['text']))
    cols = ['prompt', 'text_token_length', 'text', 'seed_data', 'format', 'audience']  # Cosmopedia-100k's order
    schema = pa.schema([(c, pa.int64() if c == 'text_token_length' else pa.string()) for c in cols])
    table = pa.Table.from_pylist([{c: d[c] for c in cols} for d in docs], schema=schema)
    pq.write_table(table, a.out, compression='zstd', compression_level=19, row_group_size=256)
    tokens = sum(d['text_token_length'] for d in docs)
    print(f"{len(docs)} documents ({n_jargon} from the Jargon File, {len(docs) - n_jargon} from the Python docs), "
          f"{tokens:,} GPT-2 tokens (+{len(docs):,} EOT), {sum(len(d['text'].encode()) for d in docs):,} bytes of text, "
          f"{Path(a.out).stat().st_size:,} bytes on disk -> {a.out}")

if __name__ == '__main__': main()
