"""The data sources (issue 16): the choice between AI Hub, the Hugging Face parquet copy and toy-kimchi, and the
Hugging Face route end to end, offline, on parquet files written with the dataset's schema (`toy_kimchi_parquet`)."""
import io, json, time
from pathlib import Path
import pytest
import pyarrow as pa, pyarrow.parquet as pq
from PIL import Image
from conftest import run_main
from kimchi_course.core import *
from kimchi_course.open_data import *
from kimchi_course.open_data import _hf_schema, _image_ext
from kimchi_course import open_data, archives
from kimchi_course.archives import data_source, kimchi_source, kimchi_test, DataSource, SOURCES, extract_archive
from kimchi_course.presize_cache import prepare, kimchi_path

OFF = {'HF_HUB_OFFLINE': '1'}

pytestmark = pytest.mark.usefixtures('own_data_env') # conftest: own cache, offline Hub, no outside data source

@pytest.fixture(scope='module')
def hf(tmp_path_factory)->Path:
    "Synthetic parquet files in the dataset's layout: 11 classes × (3 train, 2 validation, 2 test)"
    return toy_kimchi_parquet(tmp_path_factory.mktemp('hf')/'kimchi-dataset', n_per_class=dict(train=3, validation=2, test=2), seed=1)

def full(**kw): return course_settings('full', env={}, **kw)

# ---------------------------------------------------------------- names
def test_alias_table_covers_every_class_once():
    assert [hf_slug(o) for o in HF_LABELS] == KIMCHI_SLUGS
    assert len(set(HF_ALIASES.values())) == len(HF_ALIASES) == 11 and set(HF_ALIASES) == set(HF_LABELS)
    assert hf_slug('OHYEESOBAKI') == hf_slug('ohyee_sobaki') == hf_slug('오이소박이') == 'oi-sobagi'
    assert hf_slug('boochoo-kimchi') == 'buchu-kimchi' and hf_slug('baik') == 'baek-kimchi'
    with pytest.raises(ValueError, match='its names are baechu'): hf_slug('kimchi-jjigae')

# ---------------------------------------------------------------- parquet
def test_generated_parquet_has_the_dataset_schema(hf):
    f = hf/'data'/'train-00000-of-00001.parquet'
    sc = pq.read_schema(f)
    assert sc.field('image').type == pa.struct([('bytes', pa.binary()), ('path', pa.string())]) and sc.field('label').type == pa.int64()
    feats = json.loads(sc.metadata[b'huggingface'])['info']['features']
    assert feats['label'] == {'names': list(HF_LABELS), '_type': 'ClassLabel'} and feats['image'] == {'_type': 'Image'}
    assert sorted(parquet_files(hf)) == ['test', 'train', 'validation'] and parquet_files(hf/'data') == parquet_files(hf)
    im = Image.open(io.BytesIO(pq.read_table(f).column('image')[0].as_py()['bytes']))
    assert im.size == (64, 64)

def test_counts_follow_the_files_own_names(tmp_path, hf):
    assert parquet_counts(hf) == {'train': {c:3 for c in KIMCHI_SLUGS}, 'validation': {c:2 for c in KIMCHI_SLUGS}, 'test': {c:2 for c in KIMCHI_SLUGS}}
    # label 0 means whatever the file's metadata says: with the names reversed, row label 0 is yeolmoo
    rev = toy_kimchi_parquet(tmp_path/'rev', n_per_class=dict(train=1), names=list(reversed(HF_LABELS)))
    out = parquet_to_folders(rev, tmp_path/'rev-out', verbose=False)
    first = pq.read_table(rev/'data'/'train-00000-of-00001.parquet').to_pylist()[0]
    assert first['label'] == 0 and len(list((out/'train'/'yeolmu-kimchi').glob('train-0-00000.png'))) == 1
    bare = toy_kimchi_parquet(tmp_path/'bare', n_per_class=dict(train=1), names=None)
    assert parquet_labels(bare/'data'/'train-00000-of-00001.parquet') == list(HF_LABELS)

def test_parquet_to_folders_one_file_per_row_test_apart(tmp_path, hf, capsys):
    out = parquet_to_folders(hf, tmp_path/'out')
    msg = capsys.readouterr().out
    assert '55 train+validation images' in msg and '22 test images, kept apart' in msg
    count = lambda d: {c.name:len(list(c.iterdir())) for c in d.iterdir()}
    assert count(out/'train') == {c:5 for c in KIMCHI_SLUGS} and count(out/'test') == {c:2 for c in KIMCHI_SLUGS}
    rows = pq.read_table(hf/'data'/'test-00000-of-00001.parquet').to_pylist()
    r = rows[5]; slug = hf_slug(HF_LABELS[r['label']])
    assert (out/'test'/slug/'test-0-00005.png').read_bytes() == r['image']['bytes'] # the bytes, unchanged
    assert parquet_to_folders(hf, tmp_path/'out', verbose=False) == out and capsys.readouterr().out == ''
    with pytest.raises(ValueError, match='not empty and was not made'): parquet_to_folders(hf, hf.parent) # never into someone's folder
    with pytest.raises(FileNotFoundError, match='no .parquet files'): parquet_to_folders(tmp_path/'nothing', tmp_path/'o')

def test_parquet_to_folders_rebuilds_when_the_files_change(tmp_path):
    src = toy_kimchi_parquet(tmp_path/'a', n_per_class=dict(train=1))
    out = parquet_to_folders(src, tmp_path/'out', verbose=False)
    assert sum(1 for _ in (out/'train').rglob('*.png')) == 11
    toy_kimchi_parquet(tmp_path/'a', n_per_class=dict(train=2))
    assert sum(1 for _ in (parquet_to_folders(src, tmp_path/'out', verbose=False)/'train').rglob('*.png')) == 22

def test_bad_rows(tmp_path):
    sch = _hf_schema(HF_LABELS)
    (tmp_path/'bad'/'data').mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist([dict(image=dict(bytes=b'\xff\xd8\xff', path='x.jpg'), label=11)], schema=sch), tmp_path/'bad'/'data'/'train-0.parquet')
    with pytest.raises(ValueError, match='label 11 is not one of its 11 classes'): parquet_to_folders(tmp_path/'bad', tmp_path/'o')
    assert not (tmp_path/'o').exists() # nothing half-written
    (tmp_path/'nob'/'data').mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist([dict(image=dict(bytes=None, path='elsewhere.jpg'), label=0),
                                         dict(image=dict(bytes=b'\xff\xd8\xffjpeg', path=None), label=1)], schema=sch), tmp_path/'nob'/'data'/'train-0.parquet')
    out = parquet_to_folders(tmp_path/'nob', tmp_path/'o2', verbose=False)
    assert [p.relative_to(out).as_posix() for p in sorted(out.rglob('*.jpg'))] == ['train/baek-kimchi/train-0-00001.jpg']
    pq.write_table(pa.table({'text': ['a'], 'n': pa.array([1.5])}), tmp_path/'odd.parquet')
    with pytest.raises(ValueError, match='not an image-classification parquet file'): parquet_counts(tmp_path)
    assert (_image_ext(b'GIF89a'), _image_ext(b'\x89PNG\r\n'), _image_ext(b'????', 'a.webp'), _image_ext(b'????')) == ('.gif', '.png', '.webp', '.png')

# ---------------------------------------------------------------- the Hub
def test_offline_is_quick_and_never_hangs(tmp_path, monkeypatch):
    "Offline flags answer without the network; otherwise one connection attempt per address, bounded by `timeout`"
    assert hf_online(OFF) is False and hf_online({'HF_DATASETS_OFFLINE': 'true'}) is False
    monkeypatch.setattr(open_data, '_ONLINE', {})
    assert hf_online({'HF_ENDPOINT': 'http://127.0.0.1:9'}, timeout=1) is False # connection refused
    calls = []
    def refuse(*a, **k): calls.append(k.get('timeout')); raise OSError()
    monkeypatch.setattr(open_data.socket, 'create_connection', refuse)
    assert hf_online({'HF_ENDPOINT': 'http://127.0.0.1:9'}) is False and calls == [] # asked once per process
    assert hf_online({'HF_ENDPOINT': 'https://hub.example:8443'}, timeout=1) is False and calls == [1] # waits 1 s at most

def test_hf_download_without_network(tmp_path, hf):
    env = {**OFF, 'KIMCHI_CACHE': str(tmp_path/'c')}
    with pytest.raises(ConnectionError, match="couldn't reach the Hugging Face Hub.*KIMCHI_SOURCE=toy"): hf_download(env)
    assert hf_download({**env, 'KIMCHI_HF_DIR': str(hf)}) == hf
    with pytest.raises(FileNotFoundError, match='KIMCHI_HF_DIR=.* holds no .parquet'): hf_download({**env, 'KIMCHI_HF_DIR': str(tmp_path)})
    # a finished earlier download in the cache is used offline
    d = hf_folder(env); toy_kimchi_parquet(d, n_per_class=dict(train=1))
    assert hf_local(env) is None # no marker yet: an interrupted download doesn't count
    write_atomic(d/'.kimchi-download.json', '{}')
    assert hf_download(env) == d == tmp_path/'c'/'hf'/'pawlo2013--kimchi-dataset'

def test_hf_download_uses_snapshot_download(tmp_path, monkeypatch):
    "Online: only the parquet files, into the cache, then marked finished (snapshot_download replaced by a fake here)"
    import huggingface_hub
    seen = {}
    def fake(**kw): seen.update(kw); toy_kimchi_parquet(kw['local_dir'], n_per_class=dict(train=1)); return str(kw['local_dir'])
    monkeypatch.setattr(huggingface_hub, 'snapshot_download', fake)
    monkeypatch.setattr(open_data, 'hf_online', lambda env=None, timeout=3.0: True)
    env = {'KIMCHI_CACHE': str(tmp_path/'c')}
    d = hf_download(env)
    assert seen == dict(repo_id='pawlo2013/kimchi-dataset', repo_type='dataset', allow_patterns='data/*.parquet', local_dir=d)
    assert hf_local(env) == d

# ---------------------------------------------------------------- choosing the source
def test_source_order_and_forcing(tmp_path, hf):
    z = tmp_path/'aihub.zip'; z.write_bytes(b'PK')
    smoke, f = course_settings('smoke', env={}), full()
    assert data_source(smoke, {**OFF, 'KIMCHI_DATA': str(z)}).name == 'toy' # smoke mode: toy unless forced
    assert data_source(f, {**OFF, 'KIMCHI_DATA': str(z), 'KIMCHI_HF_DIR': str(hf)}) == DataSource('aihub', z, f'AI Hub kimchi photos from KIMCHI_DATA={z}')
    src = data_source(f, {**OFF, 'KIMCHI_HF_DIR': str(hf)})
    assert src.name == 'hf' and src.path == hf and 'pawlo2013/kimchi-dataset' in src.note and '64 × 64' in src.note
    assert data_source(f, OFF).name == 'toy' and 'KIMCHI_DATA' in data_source(f, OFF).note
    assert data_source(f, {**OFF, 'KIMCHI_SOURCE': 'toy', 'KIMCHI_DATA': str(z)}).name == 'toy'
    assert data_source(smoke, {**OFF, 'KIMCHI_SOURCE': 'HF', 'KIMCHI_HF_DIR': str(hf)}).name == 'hf'
    with pytest.raises(ConnectionError, match="couldn't reach.*connect, or set KIMCHI_HF_DIR"): data_source(f, {**OFF, 'KIMCHI_SOURCE': 'hf'})
    with pytest.raises(ValueError, match='needs KIMCHI_DATA'): data_source(f, {**OFF, 'KIMCHI_SOURCE': 'aihub'})
    with pytest.raises(ValueError, match="'kaggle' is not a source"): data_source(f, {'KIMCHI_SOURCE': 'kaggle'})
    assert SOURCES == ('aihub', 'hf', 'toy')

def test_hf_source_end_to_end(tmp_path, hf):
    env = {**OFF, 'KIMCHI_HF_DIR': str(hf)}
    s = full(n_per_class=4, presize=460, workers=0)
    train, test = kimchi_source(s, env=env), kimchi_test(s, env=env)
    assert train.parent == test.parent and (train.name, test.name) == ('train', 'test')
    p = kimchi_path(s, env=env)
    cached = sorted(f.relative_to(p).parent.as_posix() for f in p.rglob('*.jpg'))
    assert cached == sorted(KIMCHI_SLUGS*4) # at most n_per_class of the 5 train+validation rows per class
    test_names = {f.stem for f in test.rglob('*.png')}
    assert len(test_names) == 22 and not test_names & {f.stem for f in p.rglob('*.jpg')} # no test photo reaches training
    assert all(Image.open(f).size == (64, 64) for f in p.rglob('*.jpg')) # 64 px photos are never enlarged
    assert kimchi_test(s, env={**OFF, 'KIMCHI_SOURCE': 'toy'}) is None

def test_prepare_parquet_folder(tmp_path, hf, capsys):
    rep = prepare(hf/'data', tmp_path/'dest', size=460, workers=0)
    out = capsys.readouterr().out
    per = {}
    for f in rep.files: per[Path(f).parent.name] = per.get(Path(f).parent.name, 0) + 1
    rows = parquet_counts(hf)
    assert per == {c:rows['train'][c] + rows['validation'][c] for c in KIMCHI_SLUGS}
    assert {d.name:len(list(d.iterdir())) for d in rep.test.iterdir()} == rows['test']
    assert "test split (22 images) is kept apart" in out and not (tmp_path/'dest'/'test').exists()
    with pytest.raises(ValueError, match='overlaps'): prepare(hf, hf/'data'/'cache', verbose=False)

def test_cli_prepare_accepts_a_parquet_folder(tmp_path, hf):
    rc, out, err = run_main('prepare', hf, tmp_path/'cli-dest')
    assert rc == 0, err
    counts = {d.name:len(list(d.glob('*.jpg'))) for d in (tmp_path/'cli-dest').iterdir() if d.is_dir()}
    assert counts == {c:5 for c in KIMCHI_SLUGS} and 'kept apart' in out

# ---------------------------------------------------------------- issue 26: the photos' size, labels, test split
def test_source_photos_picks_what_data_source_picks(tmp_path, hf):
    "open_data.source_photos (for full mode's sizes) measures the source that archives.data_source chooses, in every case"
    z = tmp_path/'photos.zip'
    import zipfile
    with zipfile.ZipFile(z, 'w') as f:
        for i in range(3):
            b = io.BytesIO(); Image.new('RGB', (800, 600)).save(b, 'JPEG'); f.writestr(f'kfood/김치/배추김치/{i}.jpg', b.getvalue())
    base = {**OFF, 'KIMCHI_CACHE': str(tmp_path/'cache')}
    cases = [({}, 'toy', None), ({'KIMCHI_HF_DIR': str(hf)}, 'hf', (64, 'the open data')),
             ({'KIMCHI_DATA': str(z)}, 'aihub', (600, 'the AI Hub photos')),
             ({'KIMCHI_DATA': str(z), 'KIMCHI_HF_DIR': str(hf)}, 'aihub', (600, 'the AI Hub photos')),
             ({'KIMCHI_DATA': str(z), 'KIMCHI_HF_DIR': str(hf), 'KIMCHI_SOURCE': 'hf'}, 'hf', (64, 'the open data')),
             ({'KIMCHI_HF_DIR': str(hf), 'KIMCHI_SOURCE': 'toy'}, 'toy', None)]
    for extra, name, photos in cases:
        env = {**base, **extra}
        assert data_source(course_settings('full', env=env), env).name == name, extra
        assert source_photos(env) == photos, extra
    s = course_settings('full', env={**base, 'KIMCHI_HF_DIR': str(hf)}, photos=source_photos)
    assert (s.presize, s.size) == (128, 128) and '64 px' in s.why['presize']

def test_alias_table_against_the_dataset_labels_and_hangul():
    "The dataset's own label names and the Hangul class names; the peer's card gets baik and got wrong, our table doesn't"
    assert HF_LABELS == ('baechu', 'baik', 'boochoo', 'chongkak', 'got', 'kkakdoogi', 'moosaengchae', 'nabak', 'ohyeesobaki', 'pa', 'yeolmoo')
    hangul = {o: HANGUL[hf_slug(o)] for o in HF_LABELS}
    assert hangul == dict(baechu='배추김치', baik='백김치', boochoo='부추김치', chongkak='총각김치', got='갓김치', kkakdoogi='깍두기',
                          moosaengchae='무생채', nabak='나박김치', ohyeesobaki='오이소박이', pa='파김치', yeolmoo='열무김치')
    assert hf_slug('백김치') == 'baek-kimchi' and hf_slug('갓김치') == 'gat-kimchi'
    for wrong in ('고추', '백(대파)'):
        with pytest.raises(ValueError): hf_slug(wrong)
    assert HF_PEER['model'] == 'pawlo2013/kimchi-classification' and HF_PEER['accuracy'] == 0.89

def test_photo_size_measures_a_sample(tmp_path, hf):
    assert photo_size(hf) == 64
    d = tmp_path/'imgs'/'a'; d.mkdir(parents=True)
    for i, wh in enumerate([(1000, 750), (640, 480), (900, 1200)]): Image.new('RGB', wh).save(d/f'{i}.jpg')
    (d/'bad.jpg').write_bytes(b'nope')
    assert photo_size(tmp_path/'imgs') == 750 and photo_size(tmp_path/'none') is None
