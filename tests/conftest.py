"""Shared test helpers. Every test runs in smoke mode with its own course cache (`KIMCHI_CACHE` under pytest's
temporary folder), so no test writes to tracked files, and to `~/.cache` only through the links to its toy-pretrained
backbones (see `course_env`). Fixtures: `toy_kimchi` (one small toy-kimchi
folder), `tiny_learner` (a random-init resnet18 trained one epoch on it), `dist` (the built wheel and sdist); helpers: `zip_folder`
(hostile zips), `run_main` (the CLI in-process), `run_cli` (the installed console script, for the few tests that must
prove it works) and `fresh_venv` (a new venv that sees this interpreter's packages, for installing the wheel)."""
import contextlib, io, os, site, subprocess, sys, venv, zipfile
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent

@pytest.fixture(scope='session', autouse=True)
def course_env(tmp_path_factory):
    """Every test runs in smoke mode, with the course cache (and Gradio's upload folder) in a temporary folder of this session.
    The one exception: the toy-pretrained backbones (chapter 02a, minutes to build) and their source tasks are links to the
    user's course cache, so a test that loads them reuses the warm ones (and a missing one is built once, there)."""
    old = {k:os.environ.get(k) for k in ('KIMCHI_MODE', 'KIMCHI_CACHE', 'GRADIO_TEMP_DIR', 'GRADIO_ANALYTICS_ENABLED')}
    cache = tmp_path_factory.mktemp('kimchi-cache')
    real = Path(old['KIMCHI_CACHE'] or Path.home()/'.cache'/'kimchi-course').expanduser()
    (real/'toy-pretrained').mkdir(parents=True, exist_ok=True)
    for p in [real/'toy-pretrained', *sorted(real.glob('source-task-*'))]: (cache/p.name).symlink_to(p, target_is_directory=True)
    os.environ.update(KIMCHI_MODE='smoke', KIMCHI_CACHE=str(cache), GRADIO_TEMP_DIR=str(cache/'gradio'), GRADIO_ANALYTICS_ENABLED='False')
    yield cache
    for k,v in old.items():
        if v is None: os.environ.pop(k, None)
        else: os.environ[k] = v

@pytest.fixture(scope='session')
def toy_kimchi(course_env)->Path:
    "A small toy-kimchi folder (11 classes × 4 images, seed 5), made once per session; treat it as read-only"
    from kimchi_course.toy import make_toy_kimchi
    return make_toy_kimchi(course_env/'toy-kimchi-tests', n_per_class=4, seed=5)

@pytest.fixture(scope='session')
def tiny_learner(toy_kimchi):
    """A resnet18 on 32-px `toy_kimchi`, trained one epoch; shared by the session: don't change it in place.
    Random init on purpose (`pretrained=False`, also in smoke mode where `pretrained` means the toy-pretrained backbone):
    it is a fixture for mechanics (files, hooks, predict, the app), not for accuracy, and it must not build or need the
    toy-pretrained backbone in the test session's empty cache."""
    from kimchi_course.core import course_settings
    from kimchi_course.pretraining import course_learner
    from kimchi_course.dataloaders import kimchi_dls
    s = course_settings(arch='resnet18', pretrained=False, seed=0)
    learn = course_learner(kimchi_dls(toy_kimchi, size=32, presize=40, bs=8, seed=0, workers=0), s)
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-3)
    return learn

class _CodePageZipInfo(zipfile.ZipInfo):
    "A `ZipInfo` that stores its name in `encoding`, without the UTF-8 flag unless the encoding is UTF-8"
    encoding = 'cp949'
    def _encodeFilenameFlags(self):
        if self.encoding.replace('-','').lower()=='utf8': return self.filename.encode('utf-8'), self.flag_bits | 0x800
        return self.filename.encode(self.encoding), self.flag_bits & ~0x800

def zip_folder(
    folder, # the folder to zip
    zip_path, # the zip file to write
    encoding:str='utf-8', # how names are stored: 'utf-8' (flagged) or a code page such as 'cp949' (unflagged)
    mac_clutter:bool=False, # also add `__MACOSX/._*` and `.DS_Store` entries, as macOS's Finder does
    prefix:str=None, # top folder name inside the zip (default: the folder's name)
)->Path:
    "Zip `folder` with names stored in `encoding`, the way different tools write zips (hostile zips for the tests)"
    folder,zip_path = Path(folder),Path(zip_path)
    if not folder.is_dir(): raise FileNotFoundError(f"{folder} is not a folder")
    prefix = folder.name if prefix is None else prefix
    info_cls = type('_ZI', (_CodePageZipInfo,), {'encoding':encoding})
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    def info(name): return info_cls(name, date_time=(2024,1,1,0,0,0))
    with zipfile.ZipFile(zip_path, 'w', zipfile.ZIP_DEFLATED) as z:
        for p in sorted(folder.rglob('*')):
            if not p.is_file(): continue
            name = '/'.join(o for o in (prefix, p.relative_to(folder).as_posix()) if o)
            zi = info(name); zi.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(zi, p.read_bytes())
            if mac_clutter:
                parts = name.split('/')
                z.writestr(info('/'.join(['__MACOSX', *parts[:-1], '._'+parts[-1]])), b'\x00\x05\x16\x07')
        if mac_clutter: z.writestr(info(f'{prefix}/.DS_Store' if prefix else '.DS_Store'), b'Bud1')
    return zip_path

def run_main(*args)->tuple:
    "`kimchi-course ARGS` in-process: `(exit status, stdout, stderr)`"
    from kimchi_course.cli import main
    o,e = io.StringIO(),io.StringIO()
    with contextlib.redirect_stdout(o), contextlib.redirect_stderr(e):
        try: rc = main([str(a) for a in args])
        except SystemExit as x: rc = x.code # argparse: --help (0) and usage errors (2)
    return rc, o.getvalue(), e.getvalue()

def run_cli(*args, timeout=600, cwd=None, env=None)->subprocess.CompletedProcess:
    "The installed `kimchi-course` console script in a subprocess (smoke mode, this session's cache)"
    return subprocess.run(['kimchi-course', *map(str, args)], capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          env={**os.environ, 'KIMCHI_MODE': 'smoke', 'PYTHONWARNINGS': 'ignore', **(env or {})})

@pytest.fixture(scope='session')
def dist(tmp_path_factory)->Path:
    "A folder with the wheel and the sdist of this checkout, built once per session"
    out = tmp_path_factory.mktemp('dist')
    # --no-isolation: build with the setuptools already installed (no download), which is what CI has too
    r = subprocess.run([sys.executable, '-m', 'build', '--no-isolation', '--outdir', str(out), str(ROOT)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return out

def _site_dirs()->list:
    "This interpreter's site-packages folders (a venv's own, or the base interpreter's): where torch & co are installed"
    dirs = site.getsitepackages() + ([site.getusersitepackages()] if site.ENABLE_USER_SITE else [])
    return [d for d in dirs if Path(d).is_dir()]

def fresh_venv(
    env_dir, # folder for the new venv
    wheel=None, # a wheel (or `pip install` arguments, a list) to install into it, without its dependencies
)->Path:
    "A new venv (no system site-packages) with `wheel` installed, that finds this interpreter's packages; its python"
    venv.create(env_dir, with_pip=True)
    py = Path(env_dir)/'bin'/'python'
    if wheel is not None:
        args = [str(wheel)] if isinstance(wheel, (str, Path)) else list(map(str, wheel))
        r = subprocess.run([py, '-m', 'pip', 'install', '--no-deps', '--no-index', '-q', *args], capture_output=True, text=True)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    own = Path(subprocess.run([py, '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'], capture_output=True, text=True).stdout.strip())
    # Written after the install, so pip never sees this interpreter's packages (nor its editable kimchi-course).
    # A .pth line only appends a folder to sys.path, after the venv's own site-packages, and the .pth files inside
    # that folder (such as an editable install's finder) are not run: the venv's kimchi_course is the only one.
    (own/'_kimchi_test_deps.pth').write_text('\n'.join(_site_dirs()) + '\n')
    return py


@pytest.fixture
def own_data_env(tmp_path, monkeypatch):
    "This test's own course cache, no network for the Hugging Face Hub, and no data source set from outside"
    monkeypatch.setenv('KIMCHI_CACHE', str(tmp_path/'cache'))
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    for k in ('KIMCHI_DATA', 'KIMCHI_SOURCE', 'KIMCHI_HF_DIR'): monkeypatch.delenv(k, raising=False)
