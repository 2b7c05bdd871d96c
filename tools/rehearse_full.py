#!/usr/bin/env python
"""Rehearse full mode the way Colab runs it (issues 16 and 25), offline, on this machine: every chapter in a real
Jupyter kernel (nbclient + ipykernel, via tools/colab_run.py), every cell whatever its nbdev directives say
(`#| eval: false` and `#| notest` run too) except the `#| gpu` and `#| net` cells, full mode's own DataLoader workers
(forked processes), a stand-in `google.colab` module so each install cell takes its Colab branch; then report each
chapter's result, time and first error line (with the cell index, counted from 0).

The environment (all under one temporary work folder; nothing is downloaded, nothing tracked is written):
- `KIMCHI_MODE=full`, `HF_HUB_OFFLINE=1`, one torch thread per kernel, the kernel working in an empty folder (as
  Colab's /content: the repository's files are not there);
- the data source: `aihub` — an AI-Hub-like zip made from toy-kimchi (CP949 names without the UTF-8 flag, nested
  `kfood/김치/<Hangul class>/`, `crop_area.properties` with malformed lines, a few broken files) as `KIMCHI_DATA`;
  or `hf` — parquet files in the Hugging Face dataset's schema (`open_data.toy_kimchi_parquet`) as `KIMCHI_HF_DIR`,
  with `KIMCHI_SOURCE=hf`;
- `TORCH_HOME` whose `hub/checkpoints/` holds RANDOM weights of the right shapes under the official file names of every
  arch in `core.ARCHS` (torch.hub checks a file's hash only when it downloads it, so `pretrained=True` loads them);
- `FASTAI_HOME` with small fakes of what `untar_data(URLs.PETS)` and `untar_data(URLs.DOGS)` unpack (fastai's
  `FastDownload.get` returns `<data>/<archive stem>` without downloading when that folder exists);
- `KIMCHI_SETTINGS` shrinking sizes, images per class, epochs and lr_find iterations (`SHRINK`; the DataLoader
  workers stay full mode's);
- pip that can't change anything (`PIP_NO_INDEX=1`, `PIP_DRY_RUN=1`, `GIT_ALLOW_PROTOCOL=file`): the install cell's
  `pip install kimchi-course==<version>` is already satisfied by this checkout's install and exits 0.

The install check (`--install-check`, on by default): every chapter again, only up to and including its install cell,
with the stand-in and an install that must fail (a `PIP_CONSTRAINT` no version meets; git may not use https): each
must stop AT its install cell with one RuntimeError line. Before and after, `pip freeze --all` must be the same.

    python tools/rehearse_full.py                      # both sources, every chapter, and the install check
    python tools/rehearse_full.py --source hf --chapters 01a,01d --no-install-check
    python tools/rehearse_full.py --report /tmp/rehearsal.md
    python tools/rehearse_full.py --gpu                # on a CUDA machine: also the #| gpu cells; time and peak GPU memory

Chapters run `--workers` at a time (default 2), slowest first, each kernel with one torch thread; each chapter gets
`--timeout` seconds (default 300), after which its kernel and everything it started are killed."""
import os, re, sys, json, time, shutil, signal, argparse, tempfile, subprocess, unicodedata, zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT/'tools'))
import colab_run

NOT_KIMCHI = ('00_core', '00a_toy_kimchi', '00c_source_task', '00d_lesson_checks', '01f_cats_dogs', '09_keras_augmentation',
              '12b_training_run') # chapters that read no kimchi source (12b's demo draws toy-kimchi): hf skips them
SHRINK = dict(n_per_class=6, presize=40, size=32, bs=8, epochs=1, freeze_epochs=1, lr_find_iters=12, lr=2e-3,
              head_epochs=1, unfrozen_epochs=1, demo_epochs=1,
              bench_bs=8, bench_steps=2, bench_warmup=1, bench_n=8,
              keras_epochs=1, keras_aug_epochs=1, keras_size=80, keras_bs=8, cvd_split=(20, 10, 20),
              n_draws=2, demo_crops=2, n_seeds=2, epoch_per_class=10, n_unseen=2, large_side=400)
KEEP_FULL = ('workers', 'bench_workers') # never shrunk: full mode forks its DataLoader workers, as Colab does
PER_CLASS = 8 # toy-kimchi images per class in the AI-Hub-like zip (n_per_class keeps 6 of them)
HF_ROWS = dict(train=6, validation=2, test=3) # parquet rows per class and split
SAFE_PIP = dict(PIP_NO_INDEX='1', PIP_DRY_RUN='1', PIP_DISABLE_PIP_VERSION_CHECK='1', GIT_ALLOW_PROTOCOL='file',
                GIT_TERMINAL_PROMPT='0') # pip in a rehearsal kernel: no index, installs nothing, git can't reach out
HEAVY = ('02a', '10a', '12b', '11', '12a', '05', '04', '03a', '06', '07', '09', '03', '12') # the slowest chapters start first

def chapters(nbs:Path=ROOT/'nbs')->list:
    "Every chapter notebook's stem, in file-name order"
    return sorted(p.stem for p in nbs.glob('[0-9]*.ipynb'))

def selected(source:str, which=None)->list:
    "The chapters to rehearse for `source`: `which` (stems or their number prefixes), else every chapter (`hf`: those that read kimchi data)"
    every = chapters()
    if which:
        pick = [c for c in every if any(c == w or c.split('_')[0] == w for w in which)]
        miss = [w for w in which if not any(c == w or c.split('_')[0] == w for c in every)]
        if miss: raise SystemExit(f"no chapter notebook named {', '.join(miss)}; chapters: {', '.join(every)}")
        return pick
    return [c for c in every if source == 'aihub' or c not in NOT_KIMCHI]

def settings_text(extra:str='')->str:
    "`SHRINK` as `KIMCHI_SETTINGS` (names the course knows, never the workers), then `extra` (`key=value,...`) last"
    from kimchi_course.core import known_settings
    known = known_settings() # the mode's names and every chapter's own (its `…_SETTINGS` dict)
    stale = sorted(set(SHRINK) - known)
    if stale: raise SystemExit(f"SHRINK names settings no chapter declares: {', '.join(stale)}; remove them")
    text = ','.join(f'{k}={v!r}' if isinstance(v, str) else f'{k}={v}'.replace(' ', '')
                    for k,v in SHRINK.items() if k not in KEEP_FULL)
    return ','.join(t for t in (text, extra) if t)

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

def make_env(
    work:Path, # the work folder: fakes are built here once and reused
    source:str, # 'aihub' or 'hf'
    extra:str='', # more `KIMCHI_SETTINGS`, applied last
)->dict:
    "The environment of a Colab-style full-mode run on `source`, its fakes built under `work` (reused if there)"
    from kimchi_course.open_data import toy_kimchi_parquet
    work.mkdir(parents=True, exist_ok=True)
    seed_torch_home(work/'torch'); seed_fastai_home(work/'fastai')
    drop = ('IN_TEST', 'TORCH_HOME', 'FASTAI_HOME', 'IPYTHONDIR', 'MPLBACKEND', 'PYTHONWARNINGS', 'PYTHONPATH')
    env = {k:v for k,v in os.environ.items() if not k.startswith(('KIMCHI_', 'HF_', 'PIP_', 'JUPYTER_')) and k not in drop}
    env.update(KIMCHI_MODE='full', KIMCHI_CACHE=str(work/f'cache-{source}'), KIMCHI_SETTINGS=settings_text(extra),
               TORCH_HOME=str(work/'torch'), FASTAI_HOME=str(work/'fastai'), HF_HUB_OFFLINE='1', HF_HOME=str(work/'hf-home'),
               OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', GRADIO_ANALYTICS_ENABLED='False', PYTHONUNBUFFERED='1',
               IPYTHONDIR=str(colab_run.kernel_home(work/'ipython')), KIMCHI_REHEARSAL_COLAB='1',
               JUPYTER_RUNTIME_DIR=str(work/'jupyter-runtime'), MPLCONFIGDIR=str(work/'mpl'),
               PIP_CACHE_DIR=str(work/'pip-cache'), **SAFE_PIP)
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

def failing_install_env(env:dict, work:Path)->dict:
    "`env` where the install cell's every try fails: no kimchi-course version meets the constraint, git may not use https"
    c = work/'no-kimchi-course.txt'; c.write_text('kimchi-course<0\n')
    return {**env, 'PIP_CONSTRAINT': str(c)}

# ---------------------------------------------------------------- running chapters
def copy_course(work:Path)->Path:
    "A copy of the notebooks, so that running chapters can't write into the repository"
    dst = work/'course'
    if dst.exists(): shutil.rmtree(dst)
    shutil.copytree(ROOT/'nbs', dst/'nbs', ignore=shutil.ignore_patterns('_proc', '_docs', '.ipynb_checkpoints'))
    shutil.copy2(ROOT/'pyproject.toml', dst/'pyproject.toml')
    return dst

def _kill_group(pgid):
    "Kill a process group this harness started (a runner, or the kernel it started); gone already is fine"
    try: os.killpg(int(pgid), signal.SIGKILL)
    except (ProcessLookupError, PermissionError, ValueError, TypeError): pass

def _kill_tagged(tag:str)->list:
    "Kill every process whose environment carries `KIMCHI_REHEARSAL_TAG=tag` (a chapter's, even in its own session): their commands"
    mark, out = f'KIMCHI_REHEARSAL_TAG={tag}'.encode(), []
    for d in Path('/proc').glob('[0-9]*'):
        try:
            if int(d.name) == os.getpid() or mark not in (d/'environ').read_bytes().split(b'\0'): continue
            cmd = (d/'cmdline').read_bytes().replace(b'\0', b' ').decode(errors='replace').strip()
            os.kill(int(d.name), signal.SIGKILL); out.append(cmd[:120])
        except (OSError, ValueError): pass
    return out

def _wait(p:subprocess.Popen, limit:float)->tuple:
    "Wait for `p` (killing its group after `limit` s): its exit code and the CPU seconds it and everything it reaped used"
    end = time.monotonic() + limit
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid: break
        if time.monotonic() > end: _kill_group(p.pid); pid, status, ru = os.wait4(p.pid, 0); break
        time.sleep(0.2)
    p.returncode = os.waitstatus_to_exitcode(status)
    return p.returncode, ru.ru_utime + ru.ru_stime

def run_chapter(
    nb:Path, # the notebook (in the course copy)
    env:dict, # the environment of its kernel
    logs:Path, # folder for the runner's result, log and the kernel's process group id
    timeout:int=300, # seconds for the chapter
    skip=('gpu', 'net'), # directives whose cells are blanked
    upto_install:bool=False, # run only up to and including the install cell
)->dict:
    "Run one chapter in its own runner process (tools/colab_run.py) and kernel: `{chapter, ok, seconds, cell, error, ...}`"
    tag = nb.stem + ('-install' if upto_install else '')
    logs.mkdir(parents=True, exist_ok=True)
    out, pidf, log, cwd = logs/f'{tag}.json', logs/f'{tag}.kernel-pgid', logs/f'{tag}.log', logs/'content'/tag
    for f in (out, pidf): f.unlink(missing_ok=True)
    cmd = [sys.executable, str(ROOT/'tools'/'colab_run.py'), str(nb), '--cwd', str(cwd), '--result', str(out),
           '--timeout', str(timeout), '--skip', ','.join(skip), '--pidfile', str(pidf), '--probe']
    if upto_install: cmd += ['--upto-install']
    t, tag = time.perf_counter(), f'{os.getpid()}-{nb.stem}-{time.time_ns()}'
    env = {**env, 'KIMCHI_REHEARSAL_TAG': tag} # inherited by everything the chapter starts: found and killed afterwards
    with open(log, 'w') as lf:
        p = subprocess.Popen(cmd, env=env, stdout=lf, stderr=subprocess.STDOUT, start_new_session=True)
        rc, cpu = _wait(p, timeout + 120) # the runner stops the kernel at `timeout`; this is for a runner that hangs
    if pidf.exists(): _kill_group(pidf.read_text().strip()) # anything the kernel left behind
    time.sleep(0.5); left = _kill_tagged(tag) # and what escaped its process group (torchrun starts workers in new sessions)
    try: res = json.loads(out.read_text(encoding='utf-8'))
    except (OSError, ValueError):
        tail = [l for l in log.read_text(errors='replace').splitlines() if l.strip()][-1:] or ['no output']
        res = dict(ok=False, cell=None, error=f'the runner gave no result (exit {rc}): {tail[0][:200]}')
    res['seconds'], res['cpu_s'], res['left'] = round(time.perf_counter() - t, 1), round(cpu, 1), left
    if left and res['ok']: # on Colab they would hold memory (and a GPU) until the runtime restarts
        res.update(ok=False, error=f"the chapter left {len(left)} process(es) running after its last cell: {'; '.join(left)}"[:300])
    elif left: res['error'] = f"{res['error']} (then killed {len(left)} process(es) it had started: {'; '.join(left)})"[:400]
    return dict(chapter=nb.stem, **res)

def install_verdict(r:dict, inst:int)->dict:
    "The install check's verdict on a result: it must stop AT the install cell `inst` with one RuntimeError line"
    good = (not r['ok'] and r.get('cell') == inst and r['error'].startswith('RuntimeError: could not install')
            and '\n' not in r['error'])
    why = '' if good else ('ran past its install cell' if r['ok'] else f"stopped at cell {r.get('cell')}, not {inst}"
                           if r.get('cell') != inst else 'not the RuntimeError line')
    return {**r, 'ok': good, 'error': r['error'] if good else f"{why}: {r['error']}".strip(': '), 'stopped': r['error']}

def full_verdict(r:dict)->dict:
    "A chapter passes when every cell ran and its install cell took the Colab branch (said where it installed from)"
    if r['ok'] and not (r.get('install') or '').startswith('kimchi-course: installed from'):
        return {**r, 'ok': False, 'error': f"the install cell printed {r.get('install')!r}, not where it installed from "
                                            "(was the google.colab stand-in active?)"}
    return r

def installed()->str:
    "`pip freeze --all` of this interpreter: what the checks must leave as it was"
    return subprocess.run([sys.executable, '-m', 'pip', 'freeze', '--all'], capture_output=True, text=True,
                          env={**os.environ, 'PIP_DISABLE_PIP_VERSION_CHECK': '1'}).stdout

def rehearse_many(
    plan:dict, # source -> the chapters to rehearse on it (stems or number prefixes; `None`: every chapter for it)
    work:Path=None, # work folder (default: a new temporary one); fakes in it are reused
    timeout:int=300, # seconds per chapter
    workers:int=2, # chapters run at once, one torch thread each (one per core is the fastest on a small machine)
    verbose:bool=True, # print one line per chapter as it ends
    install_check:list=None, # chapters for the failing-install check (stems or prefixes; `[]`: none; `None`: every chapter)
    gpu:bool=False, # also run the `#| gpu` cells (a CUDA machine)
    extra:str='', # more `KIMCHI_SETTINGS`, applied last
    check_source:str='aihub', # the source whose environment the install check starts from
)->list:
    "Rehearse every (source, chapter) pair of `plan`, then the install check, on `workers` processes; one result dict each"
    from concurrent.futures import ThreadPoolExecutor
    work = Path(work) if work else Path(tempfile.mkdtemp(prefix='kimchi-rehearsal-'))
    t = time.perf_counter(); envs, courses, jobs = {}, {}, []
    skip = ('net',) if gpu else ('gpu', 'net')
    for source, which in plan.items():
        envs[source] = make_env(work, source, extra); courses[source] = copy_course(work/source)
        jobs += [('full', source, stem) for stem in selected(source, which)]
    if install_check != []:
        src = check_source
        if src not in envs: envs[src] = make_env(work, src, extra); courses[src] = copy_course(work/src)
        envs['install'] = failing_install_env(envs[src], work); courses['install'] = courses[src]
        jobs += [('install', src, stem) for stem in selected('aihub', install_check)]
    if verbose: print(f"== environments ready in {time.perf_counter()-t:.0f} s ({work}); KIMCHI_SETTINGS={envs[next(iter(envs))]['KIMCHI_SETTINGS']}", flush=True)
    rank = lambda j: (j[0] == 'install', next((i for i,h in enumerate(HEAVY) if j[2].split('_')[0] == h), len(HEAVY)))
    def one(job):
        kind, source, stem = job
        course, env = courses['install' if kind == 'install' else source], envs['install' if kind == 'install' else source]
        nb = course/'nbs'/f'{stem}.ipynb'
        r = run_chapter(nb, env, work/'logs'/(kind if kind == 'install' else source), timeout, skip, kind == 'install')
        if kind == 'install':
            import nbformat
            r = install_verdict(r, colab_run.install_cell(nbformat.read(nb, as_version=4)))
        else: r = full_verdict(r)
        r = dict(kind=kind, source=source, **r)
        if verbose:
            where = f"cell {r['cell']}: " if r.get('cell') is not None and not r['ok'] else ''
            print(f"{kind:7} {source:5} {stem:28} {'pass' if r['ok'] else 'FAIL'} {r['seconds']:7.1f} s  {where}{r['error'] if not r['ok'] else ''}", flush=True)
        return r
    order = sorted(jobs, key=rank)
    with ThreadPoolExecutor(max(1, workers)) as ex: done = dict(zip(order, ex.map(one, order)))
    return [done[j] for j in jobs]

def rehearse(source:str, which=None, work:Path=None, timeout:int=300, verbose:bool=True, workers:int=1)->list:
    "Rehearse `source` on the chosen chapters (no install check); one result dict per chapter"
    return rehearse_many({source: which}, work, timeout, workers, verbose, install_check=[])

# ---------------------------------------------------------------- reports
def _err(r:dict)->str:
    "The first error line with its cell, for a table"
    if r['ok']: return ''
    e = (f"cell {r['cell']}: " if r.get('cell') is not None else '') + r['error']
    return '`' + e.replace('|', '\\|').replace('`', "'") + '`'

def report(results:list, seconds:float=None, settings:str=None)->str:
    "A Markdown report: per source and chapter, pass/fail, time and the first error line; then the install check"
    full, inst = [r for r in results if r.get('kind', 'full') == 'full'], [r for r in results if r.get('kind') == 'install']
    lines = ['# Colab-style full-mode rehearsal (tools/rehearse_full.py)', '',
             'KIMCHI_MODE=full, offline, a real Jupyter kernel per chapter, every cell but `#| gpu`/`#| net`, full mode\'s '
             'DataLoader workers, a stand-in `google.colab`' + (f'; KIMCHI_SETTINGS=`{settings}`.' if settings else '.'), '']
    if full:
        lines += ['| source | chapter | result | seconds | CPU s | peak RSS MB | first error (cell counted from 0) |',
                  '|---|---|---|---|---|---|---|']
        for r in full:
            rss = (r.get('probe') or {}).get('rss_MB', '')
            lines.append(f"| {r['source']} | {r['chapter']} | {'pass' if r['ok'] else '**FAIL**'} | {r['seconds']} | "
                         f"{r.get('cpu_s', '')} | {rss} | {_err(r)} |")
        for s in dict.fromkeys(r['source'] for r in full):
            rs = [r for r in full if r['source'] == s]
            lines.append(f"\n{s}: {sum(r['ok'] for r in rs)} of {len(rs)} chapters pass, {sum(r['seconds'] for r in rs):.0f} s "
                         f"of chapter time; failing: {', '.join(r['chapter'] for r in rs if not r['ok']) or 'none'}")
    if inst:
        lines += ['', '## Install check: a failing install stops *Run all* at the install cell', '',
                  '| chapter | result | seconds | the line it stopped with |', '|---|---|---|---|']
        for r in inst:
            lines.append(f"| {r['chapter']} | {'pass' if r['ok'] else '**FAIL**'} | {r['seconds']} | "
                         f"{_err({**r, 'ok': False, 'error': r.get('stopped', r['error'])})} |")
        lines.append(f"\ninstall check: {sum(r['ok'] for r in inst)} of {len(inst)} chapters stop at their install cell")
    cpu = sum(r.get('cpu_s', 0) for r in results)
    if seconds is not None: lines.append(f"\nwall time: {seconds:.0f} s for {len(results)} runs; CPU time {cpu:.0f} s "
                                         f"(on an idle 2-core machine at least {cpu/2:.0f} s of wall time)")
    return '\n'.join(lines) + '\n'

def gpu_table(results:list)->str:
    "The GPU rehearsal's table: each chapter's result, time and the kernel's peak GPU memory (`torch.cuda.max_memory_allocated`)"
    rows = [r for r in results if r.get('kind', 'full') == 'full']
    gpu = next((p.get('gpu') for r in rows if (p := r.get('probe') or {}).get('gpu')), None)
    lines = [f"GPU rehearsal on {gpu or 'a CUDA GPU'}: peak memory is the kernel's own (processes it starts are not counted)", '',
             '| source | chapter | result | seconds | peak GPU MiB | first error |', '|---|---|---|---|---|---|']
    for r in rows:
        mb = (r.get('probe') or {}).get('gpu_MB')
        lines.append(f"| {r['source']} | {r['chapter']} | {'pass' if r['ok'] else '**FAIL**'} | {r['seconds']} | "
                     f"{'' if mb is None else mb} | {_err(r)} |")
    mbs = [m for r in rows if (m := (r.get('probe') or {}).get('gpu_MB')) is not None]
    lines.append(f"\n{sum(r['ok'] for r in rows)} of {len(rows)} pass; {sum(r['seconds'] for r in rows):.0f} s of chapter time; "
                 f"largest peak {max(mbs) if mbs else 'n/a'} MiB")
    return '\n'.join(lines) + '\n'

NO_CUDA = "--gpu needs a CUDA GPU, and torch finds none here (torch.cuda.is_available() is False): run it on a GPU machine, or leave out --gpu"

def main(argv=None)->int:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--source', choices=('aihub', 'hf', 'both'), default='both', help='the data source to rehearse on')
    p.add_argument('--chapters', default=None, help="comma-separated chapters (stems or numbers, e.g. 01a,03); default: all")
    p.add_argument('--work', type=Path, default=None, help='work folder (default: a new temporary folder); fakes in it are reused')
    p.add_argument('--timeout', type=int, default=300, help='seconds per chapter; then its kernel and its processes are killed')
    p.add_argument('--report', type=Path, default=None, help='also write the Markdown report here')
    p.add_argument('--workers', type=int, default=2, help='chapters run at once (one torch thread each)')
    p.add_argument('--install-check', dest='install_check', action=argparse.BooleanOptionalAction, default=True,
                   help='also check that a failing install stops each chapter at its install cell (default: yes)')
    p.add_argument('--only-install-check', action='store_true', help='only the install check')
    p.add_argument('--gpu', action='store_true', help='CUDA machine: also run the #| gpu cells; print time and peak GPU memory')
    p.add_argument('--settings', default='', help='more KIMCHI_SETTINGS (key=value,...), applied after the shrunk sizes')
    a = p.parse_args(argv)
    if a.gpu:
        import torch
        if not torch.cuda.is_available(): print(NO_CUDA, file=sys.stderr); return 2
    work = a.work or Path(tempfile.mkdtemp(prefix='kimchi-rehearsal-'))
    which = a.chapters.split(',') if a.chapters else None
    sources = ('aihub', 'hf') if a.source == 'both' else (a.source,)
    plan = {} if a.only_install_check else {s: which for s in sources}
    check = which if (a.install_check or a.only_install_check) and not a.gpu else []
    before = installed()
    t = time.perf_counter()
    res = rehearse_many(plan, work, a.timeout, a.workers, install_check=check, check_source=sources[0], gpu=a.gpu, extra=a.settings)
    secs = time.perf_counter() - t
    text = report(res, secs, settings_text(a.settings)); print(text)
    if a.gpu: print(gpu_table(res))
    if a.report: a.report.write_text(text + ('\n' + gpu_table(res) if a.gpu else ''), encoding='utf-8')
    changed = installed() != before
    if changed: print('the rehearsal changed the installed packages (pip freeze differs): it must not', file=sys.stderr)
    ok = all(r['ok'] for r in res) and not changed
    if ok and not a.work: shutil.rmtree(work, ignore_errors=True) # a temporary folder of a passing run; a failing one keeps its logs
    elif not ok: print(f"logs (each chapter's traceback): {work/'logs'}")
    print(f"== rehearsal: {'pass' if ok else 'FAIL'}: {sum(r['ok'] for r in res)} of {len(res)} runs pass in {secs:.0f} s "
          f"on {a.workers} workers; packages {'CHANGED' if changed else 'unchanged'}")
    return 0 if ok else 1

if __name__ == '__main__': sys.exit(main())
