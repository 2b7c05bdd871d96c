"""The Colab-style full-mode rehearsal's own parts (tools/rehearse_full.py, tools/colab_run.py). The rehearsal itself
is the README's second command (`python tools/rehearse_full.py`), not part of pytest: here are the fakes it builds
(so that a chapter passing means what it should), the copy of a notebook it executes (which cells it blanks), the
kernel's stand-in `google.colab`, one tiny notebook through a real kernel (install cell passing and failing, a hang
killed on time), the reports and the `--gpu` refusal on a machine without CUDA."""
import os, sys, json, time, zipfile, subprocess, unicodedata
from pathlib import Path
import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT/'tools'))
import rehearse_full as R, colab_run as C

@pytest.fixture(scope='module')
def work(tmp_path_factory)->Path: return tmp_path_factory.mktemp('rehearsal')

def test_aihub_zip_is_like_the_download(work):
    z = R.aihub_zip(work/'kfood.zip', n=2)
    with zipfile.ZipFile(z) as f: infos = f.infolist()
    assert infos and all(not i.flag_bits & 0x800 for i in infos) # names in CP949, no UTF-8 flag
    names = [i.orig_filename.encode('cp437').decode('cp949') for i in infos]
    assert all(n.startswith('kfood/김치/') for n in names)
    from kimchi_course.core import KIMCHI_CLASSES
    assert {n.split('/')[2] for n in names if n.count('/') >= 3} == {unicodedata.normalize('NFC', c.hangul) for c in KIMCHI_CLASSES}
    assert sum(n.endswith('crop_area.properties') for n in names) == 11

def test_weights_and_untar_fakes_load_offline(work, monkeypatch):
    "pretrained=True finds the seeded files under the official names; untar_data finds the fakes without a download"
    import torch, torchvision.models as tvm
    names = R.seed_torch_home(work/'torch')
    for n in ('resnet18-f37072fd.pth', 'resnet34-b627a593.pth', 'resnet50-11ad3fa6.pth', 'efficientnet_v2_s-dd5fe13b.pth'): assert n in names
    monkeypatch.setenv('TORCH_HOME', str(work/'torch'))
    monkeypatch.setattr(torch.hub, 'download_url_to_file', lambda *a, **k: pytest.fail(f'tried to download {a[0]}'))
    m = tvm.resnet18(weights='DEFAULT')
    assert m.fc.weight.shape == (1000, 512)
    fakes = R.seed_fastai_home(work/'fastai')
    monkeypatch.setenv('FASTAI_HOME', str(work/'fastai'))
    from fastai.data import external
    external.fastai_cfg.cache_clear()
    import fastdownload.core
    monkeypatch.setattr(fastdownload.core.FastDownload, 'download', lambda *a, **k: pytest.fail('untar_data tried to download'))
    try:
        assert external.untar_data(external.URLs.PETS) == fakes['PETS'] and (fakes['PETS']/'images'/'pug_1.jpg').exists()
        assert external.untar_data(external.URLs.DOGS) == fakes['DOGS'] and len(list(fakes['DOGS'].rglob('cat.*.jpg'))) == 55
    finally: external.fastai_cfg.cache_clear()

def test_settings_shrink_sizes_not_workers():
    from kimchi_course.core import settings_from_env, MODE_VALUES
    text = R.settings_text('epochs=2')
    vals = settings_from_env({}, {'KIMCHI_SETTINGS': text, 'KIMCHI_MODE': 'full'}) # raises on a name the course doesn't know
    assert vals['n_per_class'] == 6 and vals['epochs'] == 2 and vals['lr_find_iters'] == 12 and vals['cvd_split'] == (20, 10, 20)
    assert 'workers' not in text and MODE_VALUES['full']['workers'] > 0 # full mode's own (forked) DataLoader workers, as on Colab

def test_directives():
    assert C.directives('#| eval: false\n#|gpu\n# a comment\n\nx = 1\n#| net') == {'eval', 'gpu'} # only the leading comments
    assert C.directives('#| export\ndef f(): pass') == {'export'} and C.directives('x = 1') == set()

def _nb(*sources):
    import nbformat
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell('# title')] + [nbformat.v4.new_code_cell(s) for s in sources])

def test_colab_copy_blanks_only_gpu_and_net():
    nb = _nb('x = 1', '#| gpu\nraise SystemError', '#| eval: false\nprint(2)', '#| notest\nprint(3)', '#| hide\n#| net\nraise OSError')
    cp, skipped = C.colab_copy(nb)
    assert skipped == [2, 5] and len(cp.cells) == len(nb.cells) # same cell numbers as the notebook
    assert cp.cells[2].source.startswith('# skipped') and 'raise' not in cp.cells[5].source
    assert [cp.cells[i].source for i in (1, 3, 4)] == [nb.cells[i].source for i in (1, 3, 4)] # eval: false and notest run
    assert nb.cells[2].source.startswith('#| gpu') # the original is untouched
    cp, skipped = C.colab_copy(nb, skip=('net',), upto=3, probe=True)
    assert skipped == [] and len(cp.cells) == 5 and C.PROBE in cp.cells[-1].source # --gpu: the gpu cells run

def test_every_chapter_has_an_install_cell():
    "The install check needs it: a code cell starting `if 'google.colab' in sys.modules:` that pip-installs the course"
    import nbformat
    for stem in R.chapters():
        nb = nbformat.read(ROOT/'nbs'/f'{stem}.ipynb', as_version=4)
        assert 'pip' in nb.cells[C.install_cell(nb)].source, stem
    with pytest.raises(ValueError, match='no install cell'): C.install_cell(_nb('x = 1'))

def test_error_line():
    assert C.error_line('ValueError', "'김치' is not one of the 11 kimchi classes\n(more)") == "ValueError: '김치' is not one of the 11 kimchi classes"
    assert C.error_line('AssertionError', '==:\nTrue\nFalse') == 'AssertionError: ==: True False' # test_eq shows both sides
    assert C.error_line('RuntimeError', 'x (\x1b[1;35mnote\x1b[0m: y)') == 'RuntimeError: x (note: y)' # no colour codes
    assert C.error_line('SystemExit', '') == 'SystemExit'

def test_kernel_startup_file(tmp_path):
    "The kernel starts with google.colab in sys.modules, and (Python < 3.12) warns on fork with threads as 3.12+ does"
    home = C.kernel_home(tmp_path/'ipy')
    code = (home/'profile_default'/'startup'/'00-colab-rehearsal.py').read_text() + '''
import sys, os, threading, time, warnings
assert 'google.colab' in sys.modules
import importlib.util; assert importlib.util.find_spec('google.colab') # accelerate looks for it this way
import google.protobuf # the stand-in doesn't hide the real google namespace
t = threading.Thread(target=time.sleep, args=(2,), daemon=True); t.start()
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter('always')
    pid = os.fork()
    if pid == 0: os._exit(0)
    os.waitpid(pid, 0)
print([str(x.category.__name__) for x in w])
'''
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert 'DeprecationWarning' in out.stdout # on 3.12+ Python raises it itself

def _safe_env(tmp_path, **more)->dict:
    env = {k:v for k,v in os.environ.items() if not k.startswith(('PIP_', 'KIMCHI_'))}
    return {**env, **R.SAFE_PIP, 'IPYTHONDIR': str(C.kernel_home(tmp_path/'ipy')), 'PIP_CACHE_DIR': str(tmp_path/'pip'),
            'JUPYTER_RUNTIME_DIR': str(tmp_path/'rt'), **more}

def test_real_kernel_install_cell_and_directives(tmp_path):
    """Through a real kernel: the course's own install cell passes without network or change (pip finds this install),
    eval: false and notest cells run, gpu cells don't; with a failing install the run stops AT the install cell"""
    import nbformat
    first = nbformat.read(ROOT/'nbs'/'00_core.ipynb', as_version=4)
    i = C.install_cell(first)
    nb = _nb(first.cells[i-1].source, first.cells[i].source, '#| gpu\nraise SystemError("ran a gpu cell")',
             "#| eval: false\nprint('eval false ran')", "#| notest\nassert 1 == 2, 'notest ran'")
    nbformat.write(nb, tmp_path/'t.ipynb')
    before = R.installed()
    r = R.run_chapter(tmp_path/'t.ipynb', _safe_env(tmp_path), tmp_path/'logs', timeout=120)
    assert r['install'].startswith('kimchi-course: installed from PyPI'), r
    assert (r['ok'], r['cell'], r['skipped']) == (False, 5, [3]) and r['error'] == 'AssertionError: notest ran', r
    bad = R.failing_install_env(_safe_env(tmp_path), tmp_path)
    r = R.install_verdict(R.run_chapter(tmp_path/'t.ipynb', bad, tmp_path/'logs', timeout=120, upto_install=True), 2)
    assert r['ok'] and r['cell'] == 2 and r['stopped'].startswith('RuntimeError: could not install kimchi-course'), r
    assert r['cpu_s'] > 0 # the CPU time of the runner, its kernel and pip
    assert R.installed() == before # neither run installed or removed anything

def test_a_hang_costs_its_timeout_and_its_processes(tmp_path):
    "A chapter that never returns is stopped at its timeout, and what its kernel started is killed, even in a new session"
    import nbformat
    nbformat.write(_nb(f"import os, time\npid = os.fork()\nif pid == 0: os.setsid(); time.sleep(600)\n"
                       f"open({str(tmp_path/'child')!r}, 'w').write(str(pid)); time.sleep(600)"), tmp_path/'hang.ipynb')
    t = time.monotonic()
    r = R.run_chapter(tmp_path/'hang.ipynb', _safe_env(tmp_path), tmp_path/'logs', timeout=8)
    assert time.monotonic() - t < 60 and r['error'].startswith('TimeoutError') and r['cell'] == 1, r
    assert len(r['left']) == 1 and 'ipykernel' in r['left'][0], r # the forked child, in its own session
    pid = int((tmp_path/'child').read_text())
    time.sleep(0.5)
    try: state = next(l for l in Path(f'/proc/{pid}/status').read_text().splitlines() if l.startswith('State:'))
    except FileNotFoundError: state = 'gone'
    assert state == 'gone' or 'Z' in state, state # killed (a zombie until reaped counts as dead)

def _results():
    p = lambda mb: dict(rss_MB=900, gpu_MB=mb, gpu='NVIDIA T4' if mb is not None else None)
    return [dict(kind='full', source='aihub', chapter='00_core', ok=True, seconds=12.5, cell=None, error='', probe=p(0)),
            dict(kind='full', source='aihub', chapter='08_deeper_fp16', ok=False, seconds=80.0, cpu_s=150.0, cell=42,
                 error='AssertionError: ==: a | b', probe=p(1536)),
            dict(kind='full', source='hf', chapter='12a_multi_gpu', ok=False, seconds=300.0, cell=32,
                 error='TimeoutError: the chapter was still running after 300 s', probe=None),
            dict(kind='install', source='aihub', chapter='00_core', ok=True, seconds=3.0, cell=4,
                 error='RuntimeError: could not install kimchi-course 0.1.0 (x): y', stopped='RuntimeError: could not install x')]

def test_report():
    text = R.report(_results(), 400, 'epochs=1')
    assert '| aihub | 08_deeper_fp16 | **FAIL** | 80.0 | 150.0 | 900 | `cell 42: AssertionError: ==: a \\| b` |' in text
    assert 'aihub: 1 of 2 chapters pass' in text and 'hf: 0 of 1' in text and 'failing: 12a_multi_gpu' in text
    assert '| 00_core | pass | 3.0 | `cell 4: RuntimeError: could not install x` |' in text
    assert 'install check: 1 of 1' in text and 'wall time: 400 s for 4 runs; CPU time 150 s' in text

def test_gpu_table_from_cpu_made_results():
    text = R.gpu_table(_results())
    assert text.startswith('GPU rehearsal on NVIDIA T4')
    assert '| aihub | 08_deeper_fp16 | **FAIL** | 80.0 | 1536 |' in text and '| hf | 12a_multi_gpu | **FAIL** | 300.0 |  |' in text
    assert 'install' not in text.split('\n\n', 1)[1] and 'largest peak 1536 MiB' in text and '1 of 3 pass' in text

def test_gpu_flag_refuses_without_cuda(monkeypatch, capsys):
    import torch
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    assert R.main(['--gpu']) == 2
    err = capsys.readouterr().err.strip()
    assert err == R.NO_CUDA and '\n' not in err
