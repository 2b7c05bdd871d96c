#!/usr/bin/env python
"""Issue 26: the item pipeline's images/s on the open data's 64 px photos at full mode's sizes BEFORE (fastbook's
460 -> 224, what every full-mode chapter used) and AFTER (`core.size_rule`: never enlarge more than 2x, 128 -> 128),
measured in one run, with 2 DataLoader workers, on generated 64 px parquet data (`open_data.toy_kimchi_parquet`:
synthetic drawings in the Hugging Face dataset's schema; nothing is downloaded).

The item pipeline is what the CPU does for every image in every epoch: read the presize cache's file (the cache never
enlarges, so it holds the 64 px photos), decode it, `Resize(presize)` (here: enlarge it), turn it into a tensor, and
collate the batch; that is the DataBlock's `item_tfms` step of `dataloaders.kimchi_block`. `size` only enters the batch
augmentation, which full mode runs on the GPU, so it is not timed here; the table shows how many bytes per image each
setting hands on. The two settings are timed in turns (before, after, before, after, ...) after one warm-up pass each,
so both see the same machine load; the table gives the median of the passes and their range.

    python tools/bench_open_sizes.py                  # 60 photos per class (660), 3 passes each, 2 workers, batch 64
    python tools/bench_open_sizes.py --per-class 100 --repeats 5
"""
import argparse, os, statistics, tempfile, time
from pathlib import Path

def item_dl(files:list, presize:int, bs:int, workers:int):
    "A training DataLoader with the course's item step only (`Resize(presize)`, fastai's default crop), no batch transforms"
    from fastai.vision.all import DataBlock, ImageBlock, CategoryBlock, IndexSplitter, Resize
    from kimchi_course.core import class_of, KIMCHI_SLUGS
    block = DataBlock(blocks=(ImageBlock, CategoryBlock(vocab=KIMCHI_SLUGS)), get_y=class_of, splitter=IndexSplitter([]),
                      item_tfms=Resize(presize))
    return block.dataloaders(files, bs=bs, num_workers=workers, device='cpu').train

def _load()->float:
    "The 1-minute load average (NaN where the OS has none)"
    try: return os.getloadavg()[0]
    except (OSError, AttributeError): return float('nan')

def one_pass(dl)->float:
    "Images per second over one pass of `dl`"
    n, t = 0, time.perf_counter()
    for xb, yb in dl: n += len(xb)
    return n/(time.perf_counter() - t)

def bench(per_class:int=60, repeats:int=3, workers:int=2, bs:int=64, seed:int=0)->list:
    "Rows of the before/after table: `(label, presize, size, [images/s per pass])`"
    from kimchi_course.core import FULL_SIZES, size_rule
    from kimchi_course.open_data import toy_kimchi_parquet, parquet_to_folders, photo_size
    from kimchi_course.presize_cache import presize
    from kimchi_course.dataloaders import kimchi_files
    with tempfile.TemporaryDirectory(prefix='kimchi-bench-sizes-') as t:
        t = Path(t)
        hf = toy_kimchi_parquet(t/'hf', n_per_class=dict(train=per_class), seed=seed)
        side = photo_size(hf)
        folders = parquet_to_folders(hf, t/'folders', verbose=False)
        presize(folders/'train', t/'cache', size=FULL_SIZES[0], workers=workers, progress=False) # keeps 64 px: never enlarges
        files = list(kimchi_files(t/'cache'))
        rule = size_rule(side, 'the open data')
        rows = [('before: fastbook', *FULL_SIZES, []), ('after: size_rule', rule.presize, rule.size, [])]
        load0 = _load()
        dls = [item_dl(files, r[1], bs, workers) for r in rows]
        for dl in dls: one_pass(dl) # warm-up: workers start, files in the page cache
        for _ in range(repeats):
            for r, dl in zip(rows, dls): r[3].append(one_pass(dl))
        print(f"{len(files)} generated {side} px photos (synthetic, {per_class} per class), batch {bs}, {workers} DataLoader workers, "
              f"{repeats} timed passes each, {os.cpu_count()} CPU cores; 1-minute load average {load0:.1f} before, {_load():.1f} after"
              + (" (other programs were competing for the cores: compare the ratio, not the absolute numbers)" if max(load0, _load()) > os.cpu_count() else ''))
        print(f"size_rule({side}): presize {rule.presize} ({rule.why['presize']}); size {rule.size} ({rule.why['size']})")
    return rows

def table(rows:list)->str:
    "The rows as a Markdown table, with the ratio after/before"
    lines = ['| setting | presize → size | item pipeline, images/s (median, range) | bytes per image after the item step |',
             '|---|---|---|---|']
    for label, p, z, xs in rows:
        lines.append(f"| {label} | {p} → {z} | {statistics.median(xs):,.0f} ({min(xs):,.0f}–{max(xs):,.0f}) | {3*p*p:,} |")
    (b, a) = (statistics.median(r[3]) for r in rows)
    return '\n'.join(lines) + f"\n\nafter / before: {a/b:.1f}× the images per second, {(3*rows[0][1]**2)/(3*rows[1][1]**2):.1f}× fewer bytes per image"

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--per-class', type=int, default=60, help='generated photos per class (default: 60)')
    ap.add_argument('--repeats', type=int, default=3, help='timed passes per setting (default: 3)')
    ap.add_argument('--workers', type=int, default=2, help='DataLoader worker processes (default: 2, as in full mode)')
    ap.add_argument('--bs', type=int, default=64, help='batch size (default: 64, as in full mode)')
    a = ap.parse_args()
    print(table(bench(a.per_class, a.repeats, a.workers, a.bs)))
