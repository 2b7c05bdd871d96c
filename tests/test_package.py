"""The PyPI package: `python -m build` makes a wheel and an sdist, `twine check` passes, and the wheel installed in a
fresh venv gives a working `import kimchi_course` and `kimchi-course --help`, without notebooks, data or models."""
import os, subprocess, sys, zipfile, tarfile
from pathlib import Path
import pytest
from conftest import ROOT, fresh_venv

def test_wheel_and_sdist(dist):
    assert len(list(dist.glob('kimchi_course-*.whl'))) == 1
    assert len(list(dist.glob('kimchi_course-*.tar.gz'))) == 1

def test_twine_check(dist):
    r = subprocess.run([sys.executable, '-m', 'twine', 'check', '--strict', *map(str, dist.iterdir())], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr

def test_wheel_contents(dist):
    names = zipfile.ZipFile(next(dist.glob('*.whl'))).namelist()
    assert 'kimchi_course/__init__.py' in names and 'kimchi_course/cli.py' in names
    bad = [n for n in names if n.endswith(('.ipynb', '.pkl', '.pth', '.jpg', '.png', '.zip', '.keras')) or '/data/' in n or '/cache/' in n.lower() or '__pycache__' in n]
    assert not bad, bad
    meta = next(zipfile.ZipFile(next(dist.glob('*.whl'))).read(n) for n in names if n.endswith('METADATA')).decode()
    for field in ('Requires-Python: >=3.10', 'License-Expression: Apache-2.0', 'Project-URL: Repository, https://github.com/',
                  'Classifier: Programming Language :: Python :: 3', 'Description-Content-Type: text/markdown', '# kimchi-course'):
        assert field in meta, field

def test_sdist_has_no_caches(dist):
    names = tarfile.open(next(dist.glob('*.tar.gz'))).getnames()
    assert not [n for n in names if '__pycache__' in n or n.endswith(('.pkl', '.pth'))]

def test_wheel_installs_in_fresh_venv(dist, tmp_path):
    "The wheel in a fresh venv (no system site-packages) that sees this interpreter's packages through a .pth file"
    py = fresh_venv(tmp_path/'venv', next(dist.glob('*.whl')))
    own = py.parent.parent
    r = subprocess.run([py, '-c', 'import sys, torch, kimchi_course, kimchi_course.core as c; print(kimchi_course.__file__); '
                        'print(c.course_mode()); print(sys.prefix)'], capture_output=True, text=True, cwd=tmp_path,
                       env={k:v for k,v in os.environ.items() if k not in ('PYTHONPATH', 'VIRTUAL_ENV')})
    assert r.returncode == 0, r.stderr
    file, mode, prefix = r.stdout.splitlines()
    assert Path(file).is_relative_to(own) and 'site-packages' in file, f'imported the wrong copy: {file} (the venv is {own})'
    assert not Path(file).is_relative_to(ROOT) and Path(prefix) == own and mode == 'smoke'
    r = subprocess.run([own/'bin'/'kimchi-course', '--help'], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0 and 'demo' in r.stdout and 'predict' in r.stdout, r.stderr
