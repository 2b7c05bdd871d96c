"The `kimchi-course` command end to end: --help everywhere, the demo, and one-line errors for bad arguments."
import pytest
from conftest import run_cli

def test_help():
    r = run_cli('--help')
    assert r.returncode == 0 and 'demo' in r.stdout

@pytest.mark.parametrize('cmd, opt', [('demo', '--out'), ('prepare', '--per-class'), ('bench-presize', '--workers'), ('predict', '--top-k'), ('app', '--port')])
def test_subcommand_help(cmd, opt):
    r = run_cli(cmd, '--help')
    assert r.returncode == 0 and opt in r.stdout

@pytest.mark.parametrize('args, msg', [
    (['demo', '--epochs', '-1'], 'must be at least 1'),
    (['demo', '--epochs', '0'], 'must be at least 1'),
    (['demo', '--epochs', 'many'], 'whole number'),
    (['demo', '--seed', '-3'], '0 or more'),
    (['demo', '--n-per-class', '0'], 'must be at least 1'),
    (['demo', '--bogus'], 'unrecognized arguments'),
    (['frobnicate'], 'invalid choice'),
    (['prepare', 'src'], 'required'),
    (['prepare', 'src', 'dest', '--per-class', '-2'], 'must be at least 1'),
    (['bench-presize', '--workers', 'x'], 'whole number'),
    ([], 'required'),
])
def test_bad_arguments_one_line(args, msg):
    r = run_cli(*args)
    assert r.returncode == 2
    assert msg in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert 'Traceback' not in r.stderr

def test_demo_end_to_end(tmp_path):
    out = tmp_path/'demo'
    r = run_cli('demo', '--out', out, '--epochs', '4', timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    assert {p.name for p in out.iterdir()} == {'model.pkl', 'confusion_matrix.png', 'report.md'}
    assert (out/'confusion_matrix.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    report = (out/'report.md').read_text()
    acc = float(next(l for l in report.splitlines() if l.startswith('| accuracy |')).split('|')[2])
    assert acc >= 2/11, f'demo accuracy {acc:.3f} is not clearly above chance (1/11)'
    assert 'synthetic' in report

def test_demo_refuses_a_file_as_out(tmp_path):
    f = tmp_path/'a_file'; f.write_text('mine')
    r = run_cli('demo', '--out', f, '--epochs', '1', '--n-per-class', '4')
    assert r.returncode != 0 and 'Traceback' not in r.stderr
    assert f.read_text() == 'mine'

def test_prepare_bad_source_one_line(tmp_path):
    r = run_cli('prepare', tmp_path/'missing.zip', tmp_path/'cache')
    assert r.returncode == 1 and 'does not exist' in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and 'Traceback' not in r.stderr

def test_prepare_empty_folder_one_line(tmp_path):
    (tmp_path/'empty').mkdir()
    r = run_cli('prepare', tmp_path/'empty', tmp_path/'cache')
    assert r.returncode == 1 and 'Traceback' not in r.stderr, r.stderr

def test_prepare_messy_toy_kimchi(tmp_path):
    "prepare on a messy toy-kimchi (NFD names, broken files): reports, presizes, leaves the source untouched"
    from kimchi_course.toy import make_toy_kimchi
    from kimchi_course.data import file_hashes
    src = make_toy_kimchi(tmp_path/'toy', n_per_class=4, seed=1, hangul='nfd', broken_files=True, malformed_props=True)
    before = file_hashes(src)
    r = run_cli('prepare', src, tmp_path/'cache', '--per-class', '3', '--size', '64')
    assert r.returncode == 0, r.stderr[-2000:]
    assert file_hashes(src) == before
    out = [p for p in (tmp_path/'cache').rglob('*.jpg')]
    assert 0 < len(out) <= 33
