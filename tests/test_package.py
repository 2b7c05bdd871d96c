"""The PyPI package: `python -m build` makes a wheel and an sdist, `twine check` passes, and the wheel installed in a
fresh venv gives a working `import kimchi_course` and `kimchi-course --help`, without notebooks, data or models."""
import subprocess, sys, venv, zipfile, tarfile
import pytest
from conftest import ROOT

@pytest.fixture(scope='module')
def dist(tmp_path_factory):
    out = tmp_path_factory.mktemp('dist')
    # --no-isolation: build with the setuptools already installed (no download), which is what CI has too
    r = subprocess.run([sys.executable, '-m', 'build', '--no-isolation', '--outdir', str(out), str(ROOT)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return out

def test_wheel_and_sdist(dist):
    assert len(list(dist.glob('kimchi_course-*.whl'))) == 1
    assert len(list(dist.glob('kimchi_course-*.tar.gz'))) == 1

def test_twine_check(dist):
    r = subprocess.run([sys.executable, '-m', 'twine', 'check', '--strict', *map(str, dist.iterdir())], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr

def test_wheel_contents(dist):
    names = zipfile.ZipFile(next(dist.glob('*.whl'))).namelist()
    assert 'kimchi_course/__init__.py' in names and 'kimchi_course/cli.py' in names
    bad = [n for n in names if n.endswith(('.ipynb', '.pkl', '.pth', '.jpg', '.png', '.zip', '.keras')) or '/data/' in n or 'cache' in n.lower()]
    assert not bad, bad
    meta = next(zipfile.ZipFile(next(dist.glob('*.whl'))).read(n) for n in names if n.endswith('METADATA')).decode()
    for field in ('Requires-Python: >=3.10', 'License-Expression: Apache-2.0', 'Project-URL: Repository, https://github.com/',
                  'Classifier: Programming Language :: Python :: 3', 'Description-Content-Type: text/markdown', '# kimchi-course'):
        assert field in meta, field

def test_sdist_has_no_caches(dist):
    names = tarfile.open(next(dist.glob('*.tar.gz'))).getnames()
    assert not [n for n in names if '__pycache__' in n or n.endswith(('.pkl', '.pth'))]

def test_wheel_installs_in_fresh_venv(dist, tmp_path):
    env_dir = tmp_path/'venv'
    # reuse the already-installed dependencies (torch, fastai, ...) so the test is fast and offline
    venv.create(env_dir, system_site_packages=True, with_pip=True)
    py, cli = env_dir/'bin'/'python', env_dir/'bin'/'kimchi-course'
    r = subprocess.run([py, '-m', 'pip', 'install', '--no-deps', '--no-index', '-q', str(next(dist.glob('*.whl')))], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([py, '-c', 'import kimchi_course, kimchi_course.settings as s; print(kimchi_course.__file__); print(s.course_mode())'],
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert str(env_dir) in r.stdout.splitlines()[0], f'imported the wrong copy: {r.stdout}'
    r = subprocess.run([cli, '--help'], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0 and 'demo' in r.stdout, r.stderr
