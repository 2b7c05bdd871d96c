#!/usr/bin/env python
"""Issue 25, item 7: the CPU side of each chapter's Colab estimate. How many images per second the course's item
pipeline delivers with 2 DataLoader workers (Colab's T4 runtime has 2 vCPUs) at full mode's sizes, with no model.

What is timed is one pass over the TRAIN loader of `dataloaders.kimchi_dls` (the DataLoaders every chapter builds),
with the batch transforms taken off: in full mode they run on the GPU, after the batch leaves the workers. So each
image is read from the presize cache, decoded, `Resize(presize)` (a random square crop in training), turned into a
tensor and collated, in the 2 worker processes; the pass includes starting the workers, as every epoch does.

The photos are generated (nothing is downloaded), in the shape the presize cache holds them:
- the AI Hub photos: phone photos (4:3) cached with a 460 px short side: toy-kimchi drawings of 613 × 460 px, with
  sensor-like noise (±8 levels) so that the JPEGs are as hard to decode as photos, not as flat drawings; quality 90
  like the cache's. Full mode: presize 460 → size 224.
- the open Hugging Face data: 64 × 64 px photos (the cache never enlarges them), JPEG quality 90. Full mode:
  `core.size_rule(64)` → presize 128 → size 128.
Each size pair gets one warm-up pass (workers started, files in the page cache), then `--repeats` timed passes, the
pairs in turns so that both see the same machine load. On a shared, loaded machine the passes spread widely: the
table gives the median, the range and the best pass; the best pass is the closest to what the 2 cores can do.
A second measure does not depend on how loaded the machine is: the same pass in ONE process (`workers=0`, one torch
thread), timed in CPU seconds (`time.process_time`); two workers on two otherwise idle cores then deliver at most
2 / (CPU seconds per image) images/s. That is the capacity of 2 cores, with the workers' start and the hand-over of
batches to the main process left out, so it is an upper bound.

`--prep` also times the work a chapter does once before it trains, on the same CPU: building the presize cache
(`presize_cache.presize`, 2 workers: reduced-scale JPEG decode, resize to a 460 px short side, JPEG encode) from 3 MP
photos (2048 × 1536, as chapter 02's benchmark draws them; the AI Hub originals) and from the open data's 64 px
photos (re-encoded, never enlarged), and scanning the originals (`scan.scan_images`, one thread: header, 1/8-scale
decode). Wall time with 2 workers (median, range, best) and CPU seconds per image in one process, as above.

    python tools/bench_item_pipeline.py                  # 60 photos per class, 5 passes each, 2 workers, batch 64
    python tools/bench_item_pipeline.py --per-class 120 --repeats 7
    python tools/bench_item_pipeline.py --prep --repeats 3   # the one-off work: presize cache and scan
"""
import argparse, os, statistics, tempfile, time
from pathlib import Path

PAIRS = (('AI Hub photos (460 px cache)', 460, 224, (613, 460)), ('open data (64 px photos)', 128, 128, (64, 64)))

def make_photos(dest:Path, wh:tuple, per_class:int, noise:int=8, quality:int=90, seed:int=0)->int:
    "Write `per_class` toy-kimchi JPEGs of `wh` pixels per class into `dest/<slug>/`; returns their mean size in bytes"
    import numpy as np
    from PIL import Image
    from kimchi_course.core import KIMCHI_SLUGS
    from kimchi_course.toy import toy_image
    rng, sizes = np.random.default_rng(seed), []
    for slug in KIMCHI_SLUGS:
        (dest/slug).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            im = toy_image(slug, *wh, seed=f'bench/{slug}/{i}')[0]
            a = np.asarray(im, dtype=np.int16) + rng.integers(-noise, noise+1, (wh[1], wh[0], 1), dtype=np.int16)
            fn = dest/slug/f'{i:04d}.jpg'
            Image.fromarray(a.clip(0, 255).astype(np.uint8)).save(fn, quality=quality)
            sizes.append(fn.stat().st_size)
    return int(statistics.mean(sizes))

def train_item_loader(path:Path, presize:int, size:int, bs:int, workers:int):
    "The train DataLoader of `kimchi_dls(path, …)` with its batch transforms (the GPU's part) taken off"
    from fasttransform import Pipeline
    from kimchi_course.dataloaders import kimchi_dls
    dl = kimchi_dls(path, size=size, presize=presize, bs=bs, seed=42, workers=workers, valid_pct=0.2).train
    dl.after_batch = Pipeline([])
    return dl

def one_pass(dl)->tuple:
    "`(images, seconds)` of one pass over `dl`, workers' start included"
    n, t = 0, time.perf_counter()
    for xb, yb in dl: n += len(xb)
    return n, time.perf_counter() - t

def cpu_pass(dl)->tuple:
    "`(images, CPU seconds of this process)` of one pass over `dl` (use `workers=0`: everything runs in this process)"
    n, t = 0, time.process_time()
    for xb, yb in dl: n += len(xb)
    return n, time.process_time() - t

def bench(per_class:int=80, repeats:int=5, workers:int=2, bs:int=64)->list:
    "Rows `(name, presize, size, (w, h), mean JPEG bytes, images per pass, [images/s per pass], [CPU s per image])`"
    import torch
    torch.set_num_threads(1)
    rows, cpu_dls = [], []
    with tempfile.TemporaryDirectory(prefix='kimchi-bench-items-') as t:
        dls = []
        for name, pre, size, wh in PAIRS:
            nbytes = make_photos(Path(t)/f'{wh[0]}x{wh[1]}', wh, per_class)
            dl = train_item_loader(Path(t)/f'{wh[0]}x{wh[1]}', pre, size, bs, workers)
            xb, _ = next(iter(dl))
            assert tuple(xb.shape) == (bs, 3, pre, pre) and str(xb.dtype) == 'torch.uint8', xb.shape # items only
            one_pass(dl) # warm-up
            dls.append(dl); rows.append([name, pre, size, wh, nbytes, 0, [], []])
            cpu_dls.append(train_item_loader(Path(t)/f'{wh[0]}x{wh[1]}', pre, size, bs, 0))
        for _ in range(repeats):
            for r, dl, cdl in zip(rows, dls, cpu_dls):
                n, sec = one_pass(dl); r[5] = n; r[6].append(n/sec)
                n, cpu = cpu_pass(cdl); r[7].append(cpu/n)
    return rows

def table(rows:list, workers:int, bs:int)->str:
    "The rows as a Markdown table"
    out = [f'| photos | presize → size | cached photo | images per pass | {workers} workers, img/s: median (range) '
           f'| best pass | CPU ms per image: median (range) | {workers} idle cores: {workers} / CPU s per image |',
           '|---|---|---|---|---|---|---|---|']
    for name, pre, size, wh, nbytes, n, ips, cpu in rows:
        c = statistics.median(cpu)
        out.append(f'| {name} | {pre} → {size} | {wh[0]} × {wh[1]} px, {nbytes/1e3:.0f} kB | {n} | '
                   f'{statistics.median(ips):.0f} ({min(ips):.0f}–{max(ips):.0f}) | {max(ips):.0f} '
                   f'| {1e3*c:.1f} ({1e3*min(cpu):.1f}–{1e3*max(cpu):.1f}) | {workers/c:.0f} |')
    return '\n'.join(out)

PREP = (('AI Hub originals (3 MP)', (2048, 1536), 4, 92), ('open data (64 px photos)', (64, 64), 40, 90))

def prep_bench(repeats:int=3, workers:int=2)->list:
    "Rows `(name, (w, h), n, mean bytes, [presize images/s, 2 workers], [presize CPU s/image], [scan CPU s/image])`"
    import shutil
    from kimchi_course.presize_cache import presize
    from kimchi_course.scan import scan_images
    rows = []
    with tempfile.TemporaryDirectory(prefix='kimchi-bench-prep-') as t:
        for name, wh, per_class, q in PREP:
            src = Path(t)/f'src-{wh[0]}'
            nbytes = make_photos(src, wh, per_class, quality=q)
            files = sorted(src.rglob('*.jpg')); n = len(files)
            r = [name, wh, n, nbytes, [], [], []]
            for i in range(repeats+1): # the first pass warms up (files in the page cache)
                for w, out in ((workers, r[4]), (0, r[5])):
                    dest = Path(t)/f'cache-{wh[0]}-{i}-{w}'
                    c0, t0 = time.process_time(), time.perf_counter()
                    rep = presize(files, dest, size=460, workers=w, progress=False)
                    c1, t1 = time.process_time(), time.perf_counter()
                    assert len(rep.files) == n, rep
                    if i: out.append(n/(t1-t0) if w else (c1-c0)/n)
                    shutil.rmtree(dest)
                c0 = time.process_time(); sc = scan_images(src, workers=0); c1 = time.process_time()
                assert len(sc.good) == n
                if i: r[6].append((c1-c0)/n)
            rows.append(r)
    return rows

def prep_table(rows:list, workers:int)->str:
    "The one-off work as a Markdown table"
    out = [f'| photos | files | presize to 460, {workers} workers, images/s: median (range) | best '
           f'| presize CPU ms per image | {workers} idle cores: images/s | scan CPU ms per image '
           f'| scan, {workers} idle cores: images/s |', '|---|---|---|---|---|---|---|---|']
    for name, wh, n, nbytes, ips, cpu, scan in rows:
        c, sc = statistics.median(cpu), statistics.median(scan)
        out.append(f'| {name}: {wh[0]} × {wh[1]} px, {nbytes/1e3:.0f} kB | {n} '
                   f'| {statistics.median(ips):.0f} ({min(ips):.0f}–{max(ips):.0f}) | {max(ips):.0f} '
                   f'| {1e3*c:.1f} ({1e3*min(cpu):.1f}–{1e3*max(cpu):.1f}) | {workers/c:.0f} '
                   f'| {1e3*sc:.2f} ({1e3*min(scan):.2f}–{1e3*max(scan):.2f}) | {workers/sc:.0f} |')
    return '\n'.join(out)

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--per-class', type=int, default=60, help='photos per class (11 classes; 80%% of them train)')
    p.add_argument('--repeats', type=int, default=5, help='timed passes per size pair')
    p.add_argument('--workers', type=int, default=2, help='DataLoader worker processes (Colab: 2 vCPUs)')
    p.add_argument('--bs', type=int, default=64, help='batch size (full mode: 64)')
    p.add_argument('--prep', action='store_true', help='time the one-off work instead: presize cache and scan')
    a = p.parse_args()
    load = os.getloadavg()[0]
    if a.prep:
        rows = prep_bench(a.repeats, a.workers)
        print(f"one-off work: {a.repeats} timed passes after one warm-up, {os.cpu_count()} CPU cores, "
              f"load average {load:.1f} before, {os.getloadavg()[0]:.1f} after")
        print(prep_table(rows, a.workers)); raise SystemExit
    rows = bench(a.per_class, a.repeats, a.workers, a.bs)
    print(f"item pipeline of kimchi_dls' train loader, no batch transforms, no model: {a.workers} DataLoader workers, "
          f"batch {a.bs}, {a.repeats} timed passes per pair after one warm-up, {os.cpu_count()} CPU cores, "
          f"load average {load:.1f} before, {os.getloadavg()[0]:.1f} after")
    print(table(rows, a.workers, a.bs))
