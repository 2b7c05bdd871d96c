"toy-kimchi under concurrency: what the notebook holds badly (real processes racing for one folder)"
import json, sys, multiprocessing as mp
import pytest
from kimchi_course.toy import make_toy_kimchi, TOY_MARKER, TOY_VERSION
from kimchi_course.archives import file_hashes

def _make(dest): return str(make_toy_kimchi(dest, n_per_class=2, seed=5))

def _ctx(): return mp.get_context('fork' if sys.platform.startswith('linux') else 'spawn')

def test_processes_race_for_one_folder(tmp_path):
    dest = tmp_path/'race'
    with _ctx().Pool(2) as pool: outs = pool.map(_make, [dest]*4)
    assert outs == [str(dest)]*4
    assert file_hashes(dest) == file_hashes(make_toy_kimchi(tmp_path/'ref', n_per_class=2, seed=5))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith('.')] == []  # no temporary folders left

def test_finished_toy_is_reused_not_redrawn(tmp_path):
    dest = make_toy_kimchi(tmp_path/'won', n_per_class=2, seed=5)
    stamps = {p: p.stat().st_mtime_ns for p in dest.rglob('*')}
    assert make_toy_kimchi(dest, n_per_class=2, seed=5) == dest
    assert {p: p.stat().st_mtime_ns for p in dest.rglob('*')} == stamps
    m = json.loads((dest/TOY_MARKER).read_text())
    assert (m['version'], m['args']['seed'], m['synthetic'], len(m['broken']), len(m['malformed'])) == (TOY_VERSION, 5, True, 0, 0)

def test_marker_lists_what_was_broken(tmp_path):
    m = json.loads((make_toy_kimchi(tmp_path/'messy', n_per_class=3, broken_files=True, malformed_props=True)/TOY_MARKER).read_text())
    assert len(m['broken']) == 5 and len(m['malformed']) == 9

def test_outdated_toy_is_replaced_user_folder_is_not(tmp_path):
    d = make_toy_kimchi(tmp_path/'t', n_per_class=1)
    make_toy_kimchi(d, n_per_class=2)
    assert json.loads((d/TOY_MARKER).read_text())['args']['n_per_class'] == 2
    assert len(list(d.rglob('*.jpg'))) == 22 and [p.name for p in tmp_path.iterdir() if p.name.startswith('.')] == []
    (tmp_path/'u').mkdir(); (tmp_path/'u'/'x.jpg').write_bytes(b'mine')
    with pytest.raises(FileExistsError, match='not a toy-kimchi folder'): make_toy_kimchi(tmp_path/'u')
    assert (tmp_path/'u'/'x.jpg').read_bytes() == b'mine'
    (tmp_path/'f').write_text('a file')
    with pytest.raises(FileExistsError): make_toy_kimchi(tmp_path/'f')

def test_toy_imports_core_only():
    import ast, kimchi_course.toy as toy
    mods = {n.module for n in ast.walk(ast.parse(open(toy.__file__).read())) if isinstance(n, ast.ImportFrom) and n.level}
    assert mods == {'core'}, mods

def test_test_split_is_its_own(tmp_path):
    "Issue 26: toy-kimchi's held-out test split never repeats a training image; the training split's cache folder is unchanged"
    from kimchi_course.toy import make_toy_kimchi, toy_key
    from kimchi_course.archives import file_hashes
    imgs = lambda p: {v for k, v in file_hashes(p).items() if k.endswith('.jpg')}
    train, test = make_toy_kimchi(tmp_path/'train', n_per_class=6, seed=3), make_toy_kimchi(tmp_path/'test', n_per_class=6, seed=3, split='test')
    assert len(imgs(test)) == 66 and not imgs(train) & imgs(test)
    assert toy_key(n_per_class=30, seed=42) == toy_key(n_per_class=30, seed=42, split='train') != toy_key(n_per_class=30, seed=42, split='test')
