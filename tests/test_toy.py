"toy-kimchi under concurrency: what the notebook holds badly (real processes racing for one folder)"
import json, sys, multiprocessing as mp
import pytest
from kimchi_course.toy import make_toy_kimchi, TOY_MARKER, _toy_args, _write_toy, _install
from kimchi_course.data import file_hashes

def _make(dest): return str(make_toy_kimchi(dest, n_per_class=2, seed=5))

def _ctx(): return mp.get_context('fork' if sys.platform.startswith('linux') else 'spawn')

def test_processes_race_for_one_folder(tmp_path):
    dest = tmp_path/'race'
    with _ctx().Pool(2) as pool: outs = pool.map(_make, [dest]*4)
    assert outs == [str(dest)]*4
    assert file_hashes(dest) == file_hashes(make_toy_kimchi(tmp_path/'ref', n_per_class=2, seed=5))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith('.')] == []  # no temporary folders left

def test_loser_of_the_race_keeps_the_winner(tmp_path):
    a = _toy_args(2, 5, None, False, False, 0.2)
    dest = make_toy_kimchi(tmp_path/'won', n_per_class=2, seed=5)
    before = file_hashes(dest)
    _write_toy(tmp_path/'late', a)  # a second, identical dataset finishes after the first was installed
    _install(tmp_path/'late', dest, a)
    assert file_hashes(dest) == before
    assert (tmp_path/'late').exists()  # `make_toy_kimchi` deletes its own temporary folder afterwards

def test_outdated_toy_is_replaced_user_folder_is_not(tmp_path):
    d = make_toy_kimchi(tmp_path/'t', n_per_class=1)
    make_toy_kimchi(d, n_per_class=2)
    assert json.loads((d/TOY_MARKER).read_text())['args']['n_per_class'] == 2
    (tmp_path/'u').mkdir(); (tmp_path/'u'/'x.jpg').write_bytes(b'mine')
    with pytest.raises(FileExistsError, match='not a toy-kimchi folder'): make_toy_kimchi(tmp_path/'u')
    assert (tmp_path/'u'/'x.jpg').read_bytes() == b'mine'
    (tmp_path/'f').write_text('a file')
    with pytest.raises(FileExistsError): make_toy_kimchi(tmp_path/'f')
