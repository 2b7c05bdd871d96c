#!/usr/bin/env python
"""Rehearse full mode offline, on a CPU (issue 16): run course chapters with `nbdev-test` in a throw-away environment
that looks like a learner's full-mode run, and report each chapter's result and time.

The environment (all under one temporary work folder; nothing is downloaded, nothing tracked is written):
- `KIMCHI_MODE=full`, `HF_HUB_OFFLINE=1`, one torch thread;
- the data source: `aihub` — an AI-Hub-like zip made from toy-kimchi (CP949 names without the UTF-8 flag, nested
  `kfood/김치/<Hangul class>/`, `crop_area.properties` with malformed lines, a few broken files) as `KIMCHI_DATA`;
  or `hf` — parquet files in the Hugging Face dataset's schema (`open_data.toy_kimchi_parquet`) as `KIMCHI_HF_DIR`,
  with `KIMCHI_SOURCE=hf`;
- `TORCH_HOME` whose `hub/checkpoints/` holds RANDOM weights of the right shapes under the official file names of every
  arch in `core.ARCHS` (torch.hub checks a file's hash only when it downloads it, so `pretrained=True` loads them);
- `FASTAI_HOME` with small fakes of what `untar_data(URLs.PETS)` and `untar_data(URLs.DOGS)` unpack (fastai's
  `FastDownload.get` returns `<data>/<archive stem>` without downloading when that folder exists);
- `KIMCHI_SETTINGS` shrinking sizes, images per class, epochs and lr_find iterations (`SHRINK`, only names that
  `core.MODE_VALUES` / `core.CHAPTER_SETTINGS` know).
Only the cells nbdev-test skips by the project's `tst_flags` (`#| gpu`, `#| net`, `#| notest`) are left out.

    python tools/rehearse_full.py                      # both sources: every chapter, and for hf every chapter that reads kimchi data
    python tools/rehearse_full.py --source hf --chapters 01a,01d
    python tools/rehearse_full.py --report /work/rehearsal_report.md

`CHAPTERS` below is what the CI test (tests/test_full_rehearsal.py) rehearses: every chapter (`ALL`). Chapters run
`--workers` at a time (default 2), slowest first, each with one torch thread."""
import os, re, sys, json, time, shutil, argparse, tempfile, subprocess, unicodedata, zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ALL = {'aihub': None, 'hf': None} # None: every chapter notebook (aihub), every chapter that reads the kimchi data (hf)
NOT_KIMCHI = ('00_core', '00a_toy_kimchi', '00c_source_task', '09_keras_augmentation') # chapters that read no kimchi data: the hf rehearsal skips them
CHAPTERS = ALL # what the CI test (tests/test_full_rehearsal.py) rehearses: every chapter, on both sources
SHRINK = dict(n_per_class=6, presize=40, size=32, bs=8, epochs=1, freeze_epochs=1, lr_find_iters=12, workers=0, lr=2e-3,
              long_epochs=2, ft_epochs=1, foc_epochs=1, head_epochs=1, unfrozen_epochs=1, demo_epochs=1,
              bench_bs=8, bench_steps=2, bench_warmup=1, bench_epochs=1, bench_n=8, bench_workers=0,
              keras_epochs=1, keras_aug_epochs=1, keras_size=80, keras_bs=8, cvd_split=(20, 10, 20),
              n_draws=2, demo_crops=2, n_seeds=2, epoch_per_class=10, n_unseen=2, repeats=1, large_side=400)
PER_CLASS = 8 # toy-kimchi images per class in the AI-Hub-like zip (n_per_class keeps 6 of them)
HF_ROWS = dict(train=6, validation=2, test=3) # parquet rows per class and split

def chapters(nbs:Path=ROOT/'nbs')->list:
    "Every chapter notebook's stem, in file-name order"
    return sorted(p.stem for p in nbs.glob('[0-9]*.ipynb'))

def selected(source:str, which=None)->list:
    "The chapters to rehearse for `source`: `which` (stems or their number prefixes), or `ALL`'s default"
    every = chapters()
    if which:
        pick = [c for c in every if any(c == w or c.split('_')[0] == w for w in which)]
        miss = [w for w in which if not any(c == w or c.split('_')[0] == w for c in every)]
        if miss: raise SystemExit(f"no chapter notebook named {', '.join(miss)}; chapters: {', '.join(every)}")
        return pick
    return [c for c in every if source == 'aihub' or c not in NOT_KIMCHI]

def settings_text()->str:
    "`SHRINK` as `KIMCHI_SETTINGS`, keeping only the names the course knows"
    from kimchi_course.core import MODE_VALUES, CHAPTER_SETTINGS
    known = set(MODE_VALUES['full']) | set(CHAPTER_SETTINGS)
    return ','.join(f'{k}={v!r}' if isinstance(v, str) else f'{k}={v}'.replace(' ', '') for k,v in SHRINK.items() if k in known)

# ---------------------------------------------------------------- the fake learner machine
class _CP949Info(zipfile.ZipInfo):
    "A zip entry whose name is stored in CP949 without the UTF-8 flag, as Korean Windows tools write them"
    def _encodeFilenameFlags(self): return self.filename.encode('cp949'), self.flag_bits & ~0x800

def aihub_zip(dest:Path, n:int=PER_CLASS, seed:int=7)->Path:
    "An AI-Hub-like zip from toy-kimchi: CP949 names, `kfood/김치/<Hangul class>/`, crop_area.properties, broken files"
    from kimchi_course.toy import make_toy_kimchi
    toy = make_toy_kimchi(dest.parent/'toy-source', n_per_class=n, seed=seed, hangul='nfc', malformed_props=True,
                          broken_files=True, large_frac=0.1)
    with zipfile.ZipFile(dest, 'w', zipfile.ZIP_DEFLATED) as z:
        for p in sorted(toy.rglob('*')):
            if not p.is_file() or p.name.startswith('.toy-kimchi'): continue
            zi = _CP949Info('kfood/김치/' + unicodedata.normalize('NFC', p.relative_to(toy).as_posix()), date_time=(2021, 6, 1, 0, 0, 0))
            zi.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(zi, p.read_bytes())
    return dest

def weight_files()->dict:
    "`{file name: arch}` for every weights file fastai or torchvision may load for the course's ARCHS"
    import torchvision.models as tvm
    from kimchi_course.core import ARCHS
    out = {}
    for a in ARCHS:
        enum = tvm.get_model_weights(a)
        for w in {enum.DEFAULT, *[e for e in enum if e.name == 'IMAGENET1K_V1']}: out[Path(w.url).name] = a
    return out

def seed_torch_home(torch_home:Path)->list:
    "Random weights of the right shapes under the official file names in `torch_home/hub/checkpoints`"
    import torch, torchvision.models as tvm
    ck = torch_home/'hub'/'checkpoints'; ck.mkdir(parents=True, exist_ok=True)
    done = {}
    for name,a in sorted(weight_files().items()):
        if (ck/name).exists(): continue
        if a in done: os.link(done[a], ck/name); continue
        torch.manual_seed(0); torch.save(tvm.get_model(a, weights=None).state_dict(), ck/name); done[a] = ck/name
    return sorted(p.name for p in ck.iterdir())

def seed_fastai_home(fastai_home:Path)->dict:
    "Small fakes of the folders `untar_data(URLs.PETS)` and `untar_data(URLs.DOGS)` unpack, where fastai looks first"
    from fastai.data.external import URLs
    from kimchi_course.toy import toy_image
    data = fastai_home/'data'; out = {}
    pets = data/Path(URLs.PETS).name.removesuffix('.tgz') # oxford-iiit-pet
    for k,breed in enumerate(('Abyssinian', 'Bengal', 'beagle', 'pug')):
        for i in range(8):
            f = pets/'images'/f'{breed}_{i+1}.jpg'; f.parent.mkdir(parents=True, exist_ok=True)
            toy_image(('baechu-kimchi', 'kkakdugi', 'pa-kimchi', 'oi-sobagi')[k], 120, 96, seed=f'pets-{k}-{i}')[0].save(f, quality=85)
    (pets/'annotations').mkdir(exist_ok=True)
    dogs = data/Path(URLs.DOGS).name.removesuffix('.tgz') # dogscats
    for split,n,start in (('train', 40, 0), ('valid', 15, 1000)):
        for c,slug in (('cat', 'baechu-kimchi'), ('dog', 'kkakdugi')):
            d = dogs/split/f'{c}s'; d.mkdir(parents=True, exist_ok=True)
            for i in range(start, start+n): toy_image(slug, 96, 80, seed=f'cvd-{c}-{i}')[0].save(d/f'{c}.{i}.jpg', quality=85)
    out['PETS'], out['DOGS'] = pets, dogs
    return out

def make_env(work:Path, source:str)->dict:
    "The environment of a full-mode run on `source` ('aihub' or 'hf'), its fakes built under `work` (reused if there)"
    from kimchi_course.open_data import toy_kimchi_parquet
    work.mkdir(parents=True, exist_ok=True)
    seed_torch_home(work/'torch'); seed_fastai_home(work/'fastai')
    env = {k:v for k,v in os.environ.items() if not k.startswith(('KIMCHI_', 'HF_')) and k not in ('IN_TEST', 'TORCH_HOME', 'FASTAI_HOME')}
    env.update(KIMCHI_MODE='full', KIMCHI_CACHE=str(work/f'cache-{source}'), KIMCHI_SETTINGS=settings_text(),
               TORCH_HOME=str(work/'torch'), FASTAI_HOME=str(work/'fastai'), HF_HUB_OFFLINE='1', HF_HOME=str(work/'hf-home'),
               MPLBACKEND='Agg', OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', GRADIO_ANALYTICS_ENABLED='False', PYTHONWARNINGS='ignore')
    if source == 'aihub':
        z = work/'aihub'/'kfood.zip'; z.parent.mkdir(exist_ok=True)
        if not z.exists(): aihub_zip(z)
        env['KIMCHI_DATA'] = str(z)
    elif source == 'hf':
        d = work/'hf'/'kimchi-dataset'
        if not d.exists(): toy_kimchi_parquet(d, n_per_class=HF_ROWS, seed=7)
        env.update(KIMCHI_SOURCE='hf', KIMCHI_HF_DIR=str(d))
    else: raise SystemExit(f"unknown source {source!r}; use aihub or hf")
    return env

# ---------------------------------------------------------------- running chapters
def copy_course(work:Path)->Path:
    "A copy of the notebooks and the nbdev config, so that running chapters can't write into the repository"
    dst = work/'course'
    if dst.exists(): shutil.rmtree(dst)
    shutil.copytree(ROOT/'nbs', dst/'nbs', ignore=shutil.ignore_patterns('_proc', '_docs', '.ipynb_checkpoints'))
    shutil.copy2(ROOT/'pyproject.toml', dst/'pyproject.toml')
    return dst

_ERR = re.compile(r'^(?:[\w.]+\.)?[A-Z]\w*(?:Error|Exception|Exit|Interrupt|Failure)\b.*')

def first_error(text:str)->str:
    "The exception line (`ValueError: ...`) of the first failing cell in nbdev-test's output, else its last non-empty line"
    lines = [l.rstrip() for l in text.split('nbdev Tests Failed')[0].splitlines()] # not nbdev's closing list of notebooks
    hits = [l for l in lines if _ERR.match(l) and not l.endswith('.ipynb:')] # not nbdev's 'ValueError in <notebook>:' header
    if not hits: return next((l for l in reversed(lines) if l.strip()), 'no output')[:300]
    i = len(lines) - 1 - lines[::-1].index(hits[-1])
    more = [l.strip() for l in lines[i+1:i+3] if l.strip()] if hits[-1].endswith(':') else [] # test_eq's "==:" then both sides
    return ' '.join([hits[-1], *more])[:300]

def run_chapter(course:Path, stem:str, env:dict, timeout:int=600)->dict:
    "Run one chapter with nbdev-test in `env`: `{chapter, ok, seconds, error}`"
    t = time.perf_counter()
    try:
        r = subprocess.run(['nbdev-test', f'nbs/{stem}.ipynb'], cwd=course, env=env, capture_output=True, text=True, timeout=timeout)
        ok, out = r.returncode == 0 and 'Success' in r.stdout + r.stderr, r.stdout + r.stderr
    except subprocess.TimeoutExpired as e:
        ok, out = False, f'TimeoutError: still running after {timeout} s'
    return dict(chapter=stem, ok=ok, seconds=round(time.perf_counter() - t, 1), error='' if ok else first_error(out))

HEAVY = ('02a', '10', '13', '11', '12a', '05', '04', '03a', '06', '07', '09', '03', '12') # the slowest chapters start first

def rehearse_many(
    plan:dict, # source -> the chapters to rehearse on it (stems or number prefixes; `None`: `ALL`'s default)
    work:Path=None, # work folder (default: a new temporary one); fakes in it are reused
    timeout:int=600, # seconds per chapter
    workers:int=2, # chapters run at once, one torch thread each (one per core is the fastest on a small machine)
    verbose:bool=True, # print one line per chapter as it ends
)->list:
    "Rehearse every (source, chapter) pair of `plan` on `workers` processes, slowest chapters first; one result dict per pair, in plan order"
    from concurrent.futures import ThreadPoolExecutor
    work = Path(work) if work else Path(tempfile.mkdtemp(prefix='kimchi-rehearsal-'))
    t = time.perf_counter(); envs, courses, jobs = {}, {}, []
    for source, which in plan.items():
        envs[source] = make_env(work, source); courses[source] = copy_course(work/source)
        jobs += [(source, stem) for stem in selected(source, which)]
    if verbose: print(f"== environments ready in {time.perf_counter()-t:.0f} s ({work}); KIMCHI_SETTINGS={settings_text()}", flush=True)
    rank = lambda j: next((i for i,h in enumerate(HEAVY) if j[1].split('_')[0] == h), len(HEAVY))
    def one(job):
        source, stem = job
        r = dict(source=source, **run_chapter(courses[source], stem, envs[source], timeout))
        if verbose: print(f"{source:5} {stem:28} {'pass' if r['ok'] else 'FAIL'} {r['seconds']:7.1f} s  {r['error']}", flush=True)
        return r
    with ThreadPoolExecutor(max(1, workers)) as ex: done = dict(zip(sorted(jobs, key=rank), ex.map(one, sorted(jobs, key=rank))))
    return [done[j] for j in jobs]

def rehearse(source:str, which=None, work:Path=None, timeout:int=600, verbose:bool=True, workers:int=1)->list:
    "Rehearse `source` on the chosen chapters; one result dict per chapter"
    return rehearse_many({source: which}, work, timeout, workers, verbose)

def report(results:list)->str:
    "A Markdown report: per source and chapter, pass/fail, time and the first error line"
    lines = ['# Full-mode rehearsal (tools/rehearse_full.py)', '',
             f'KIMCHI_MODE=full, offline, CPU, one torch thread; KIMCHI_SETTINGS=`{settings_text()}`.', '',
             '| source | chapter | result | seconds | first error line |', '|---|---|---|---|---|']
    for r in results:
        err = r['error'].replace('|', '\\|')
        lines.append(f"| {r['source']} | {r['chapter']} | {'pass' if r['ok'] else '**FAIL**'} | {r['seconds']} | {'`'+err+'`' if err else ''} |")
    for s in dict.fromkeys(r['source'] for r in results):
        rs = [r for r in results if r['source'] == s]
        lines.append(f"\n{s}: {sum(r['ok'] for r in rs)} of {len(rs)} chapters pass, {sum(r['seconds'] for r in rs):.0f} s in all; "
                     f"failing: {', '.join(r['chapter'] for r in rs if not r['ok']) or 'none'}")
    return '\n'.join(lines) + '\n'

def main(argv=None)->int:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--source', choices=('aihub', 'hf', 'both'), default='both', help='the data source to rehearse on')
    p.add_argument('--chapters', default=None, help="comma-separated chapters (stems or numbers, e.g. 01a,03); 'ci': the CHAPTERS list")
    p.add_argument('--work', type=Path, default=None, help='work folder (default: a new temporary folder); fakes in it are reused')
    p.add_argument('--timeout', type=int, default=600, help='seconds per chapter')
    p.add_argument('--report', type=Path, default=None, help='also write the Markdown report here')
    p.add_argument('--workers', type=int, default=2, help='chapters run at once (one torch thread each)')
    a = p.parse_args(argv)
    work = a.work or Path(tempfile.mkdtemp(prefix='kimchi-rehearsal-'))
    plan = {s: CHAPTERS[s] if a.chapters == 'ci' else (a.chapters.split(',') if a.chapters else None)
            for s in (('aihub', 'hf') if a.source == 'both' else (a.source,))}
    t = time.perf_counter(); res = rehearse_many(plan, work, a.timeout, a.workers)
    print(f"== {len(res)} chapter runs in {time.perf_counter()-t:.0f} s on {a.workers} workers")
    text = report(res); print(text)
    if a.report: a.report.write_text(text, encoding='utf-8')
    return 0 if all(r['ok'] for r in res) else 1

if __name__ == '__main__': sys.exit(main())
