"Keras chapter (09): lazy, TensorFlow-free Keras, clear errors, the toy cats vs dogs drawn once, an offline fallback, checkpoints outside the working folder, images decoded once, a three-verdict lesson check"
import os, re, subprocess, sys, textwrap
import numpy as np, pandas as pd
from pathlib import Path
import pytest
from PIL import Image
from kimchi_course.archives import file_hashes
import kimchi_course.keras_baseline as kb

@pytest.fixture(scope='module')
def split(course_env):
    "DLwP's train/validation/test × cat/dog tree, 4 images each, made by the chapter's own functions from the toy faces"
    src = kb.toy_cats_dogs(12, seed=1, size=48)
    return kb.cats_vs_dogs_small(src, course_env/'cvd-test-split', 4, 4, 4)

def test_module_import_does_not_import_keras():
    out = subprocess.run([sys.executable, '-c', "import sys, kimchi_course.keras_baseline; print('keras' in sys.modules)"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == 'False'

def test_missing_keras_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, 'keras', None)  # makes `import keras` fail as if it weren't installed
    with pytest.raises(ImportError, match=r'pip install "kimchi-course\[keras\]"'): kb.import_keras()

def test_other_backend_is_refused(monkeypatch):
    monkeypatch.setenv('KERAS_BACKEND', 'tensorflow')
    with pytest.raises(ValueError, match='KERAS_BACKEND=torch'): kb.import_keras()

def test_toy_pets_are_deterministic_and_checked():
    a, b = kb.toy_pet('cat', 48, seed='s-1'), kb.toy_pet('cat', 48, seed='s-1')
    assert a.size == (48, 48) and np.array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a), np.asarray(kb.toy_pet('dog', 48, seed='s-1')))
    with pytest.raises(ValueError, match="use 'cat' or 'dog'"): kb.toy_pet('horse')
    with pytest.raises(ValueError, match='too small'): kb.toy_pet('dog', 10)
    assert all(0 < p < 1 for pair in kb.PET_CUES.values() for p in pair)  # no cue alone decides the class

def test_toy_cats_dogs_is_built_once_and_never_into_a_foreign_folder(tmp_path):
    a = kb.toy_cats_dogs(3, seed=7, size=32, dest=tmp_path/'s')
    assert sorted(p.name for p in a.glob('*.jpg')) == ['cat.0.jpg', 'cat.1.jpg', 'cat.2.jpg', 'dog.0.jpg', 'dog.1.jpg', 'dog.2.jpg']
    assert Image.open(a/'dog.2.jpg').size == (32, 32)
    stamp = (a/'cat.0.jpg').stat().st_mtime_ns
    assert kb.toy_cats_dogs(3, seed=7, size=32, dest=a) == a and (a/'cat.0.jpg').stat().st_mtime_ns == stamp  # reused, not redrawn
    assert [p.name for p in tmp_path.iterdir()] == ['s']  # no temporary folder left behind
    (tmp_path/'mine').mkdir(); (tmp_path/'mine'/'notes.txt').write_text('keep me')
    with pytest.raises(ValueError, match='not made by this'): kb.toy_cats_dogs(3, seed=7, dest=tmp_path/'mine')
    assert [p.name for p in (tmp_path/'mine').iterdir()] == ['notes.txt']
    with pytest.raises(ValueError, match='not made by this'): kb.toy_cats_dogs(4, seed=7, size=32, dest=a)  # other arguments
    with pytest.raises(ValueError, match='whole number'): kb.toy_cats_dogs(0)
    default = kb.toy_cats_dogs(2, seed=3, size=32)  # the default folder lives in the course cache, named after the arguments
    assert default.parent == kb.cache_dir() and f'v{kb.TOY_PETS_VERSION}' in default.name

def test_source_falls_back_to_the_toy_data_offline(capsys, tmp_path):
    from kimchi_course.core import course_settings
    smoke, full = (course_settings(m, env={}, cvd_split=(2, 1, 2)) for m in ('smoke', 'full'))
    toy = kb.toy_cats_dogs(5, seed=smoke.seed)
    def offline(): raise OSError('[Errno -3] Temporary failure in name resolution')
    assert kb.cats_dogs_source(smoke, download=lambda: pytest.fail('smoke mode must not download')) == toy
    assert kb.cats_dogs_source(full, download=offline) == toy
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and 'name resolution' in out[0] and 'toy cats vs dogs' in out[0] and 'connect to the internet' in out[0]
    (tmp_path/'dogscats').mkdir()
    assert kb.cats_dogs_source(full, download=lambda: tmp_path/'dogscats') == tmp_path/'dogscats'  # an unpacked copy is used
    assert capsys.readouterr().out == ''

def _jpeg(p, shade=0):
    p.parent.mkdir(parents=True, exist_ok=True); Image.new('RGB', (40, 30), (shade, 0, 0)).save(p)

def test_cats_vs_dogs_small(tmp_path):
    flat = tmp_path/'train'
    for c in ('cat', 'dog'):
        for i in range(12): _jpeg(flat/f'{c}.{i}.jpg', i)
    _jpeg(flat/'1.jpg'); (flat/'.DS_Store').write_bytes(b'x')
    before = file_hashes(flat)
    d = kb.cats_vs_dogs_small(flat, tmp_path/'small', n_train=4, n_valid=2, n_test=3)
    got = {p.relative_to(d).as_posix() for p in d.rglob('*.jpg')}
    assert {f'train/cat/cat.{i}.jpg' for i in range(4)} <= got and 'validation/dog/dog.5.jpg' in got and 'test/dog/dog.8.jpg' in got
    assert len(got) == 18 and (d/'train'/'cat'/'cat.2.jpg').read_bytes() == (flat/'cat.2.jpg').read_bytes()
    assert kb.cats_vs_dogs_small(flat, tmp_path/'small', n_train=4, n_valid=2, n_test=3) == d
    with pytest.raises(ValueError, match='not empty'): kb.cats_vs_dogs_small(flat, tmp_path/'small', n_train=5, n_valid=2, n_test=3)
    with pytest.raises(ValueError, match='needs 13'): kb.cats_vs_dogs_small(flat, tmp_path/'x', n_train=8, n_valid=2, n_test=3)
    with pytest.raises(ValueError, match='overlaps'): kb.cats_vs_dogs_small(flat, flat/'sub', n_train=1, n_valid=1, n_test=1)
    with pytest.raises(FileNotFoundError, match='is not a folder'): kb.cats_vs_dogs_small(tmp_path/'none', tmp_path/'y')
    # fastai's URLs.DOGS layout: dogscats/{train,valid}/{cats,dogs}/cat.N.jpg
    ds = tmp_path/'dogscats'
    for split,rng in (('train', range(0, 8)), ('valid', range(8, 12))):
        for c in ('cat', 'dog'):
            for i in rng: _jpeg(ds/split/f'{c}s'/f'{c}.{i}.jpg')
    d2 = kb.cats_vs_dogs_small(ds, tmp_path/'small2', n_train=6, n_valid=3, n_test=3)
    assert sorted(p.name for p in (d2/'test'/'cat').iterdir()) == ['cat.10.jpg', 'cat.11.jpg', 'cat.9.jpg']
    assert file_hashes(flat) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ['dogscats', 'small', 'small2', 'train']  # no temporary folders left

def test_the_split_has_the_books_shape(split):
    counts = {(sp, c): len(list((split/sp/c).glob('*.jpg'))) for sp in ('train', 'validation', 'test') for c in ('cat', 'dog')}
    assert set(counts.values()) == {4}

def test_loader_errors(tmp_path, split):
    with pytest.raises(FileNotFoundError, match='not a folder'): kb.keras_loader(tmp_path/'missing')
    with pytest.raises(ValueError, match='exactly 2'): kb.keras_loader(split)  # train/validation/test: three "classes"
    xb,yb = next(iter(kb.keras_loader(split/'train', size=80, bs=3)))
    assert tuple(xb.shape) == (3, 80, 80, 3) and tuple(yb.shape) == (3, 1) and float(xb.max()) > 1

def test_loader_decodes_once(split):
    a = kb.keras_loader(split/'train', size=80, bs=3, shuffle=True)
    b = kb.keras_loader(split/'train', size=80, bs=8)
    assert a.dataset is b.dataset and a.dataset.x.dtype == __import__('torch').uint8 and tuple(a.dataset.x.shape) == (8, 3, 80, 80)
    assert a.dataset.classes == ['cat', 'dog'] and a.dataset.targets == [0]*4 + [1]*4
    assert kb.keras_loader(split/'train', size=40).dataset is not a.dataset  # another size: decoded again

def test_convnet_sizes():
    assert kb.convnet_side(180) == 7 and kb.min_convnet_size() == 78

@pytest.mark.skipif(__import__('importlib').util.find_spec('keras') is None, reason='the keras extra is not installed')
def test_convnet_options():
    m = kb.make_convnet(78, augment=True, dropout=0.5, filters=(4, 4, 8, 8, 8), interpolation='nearest', seed=3)
    aug = m.get_layer('augmentation').layers
    assert [l.interpolation for l in aug[1:]] == ['nearest', 'nearest'] and m.layers[3].filters == 4
    w = kb.make_convnet(78, filters=(4, 4, 8, 8, 8), seed=3).get_weights()[0]
    assert np.array_equal(w, kb.make_convnet(78, filters=(4, 4, 8, 8, 8), seed=3).get_weights()[0])  # same seed, same start
    with pytest.raises(ValueError, match='5 convolutions'): kb.make_convnet(78, filters=(4, 4))

def _hits(ones, n=100, name='h', prefix='cat/'): return pd.Series([1]*ones + [0]*(n-ones), index=[f'{prefix}{i}.jpg' for i in range(n)], name=name)

def _run(test, train, valid, best=2):
    "A run with `test`, `train` and `valid` of 100 images right"
    return kb.ConvnetRun('r', 78, 4, 1, dict(accuracy=[0.5]*4, val_accuracy=[0.5]*4), best_epoch=best, test_acc=test/100,
                         test_hits=_hits(test), train_hits=_hits(train, prefix='tr/'), valid_hits=_hits(valid, prefix='va/'))

def test_overfit_gap():
    assert abs(kb.overfit_gap(dict(accuracy=[0.5, 0.9, 1.0], val_accuracy=[0.5, 0.7, 0.6]), last=2) - 0.3) < 1e-9
    with pytest.raises(ValueError, match='at least 1'): kb.overfit_gap(dict(accuracy=[0.5], val_accuracy=[]))

def test_gap_interval():
    g, lo, hi = kb.gap_interval(_run(60, 100, 60))
    assert g == pytest.approx(0.4) and 0 < lo < g < hi
    d, lo, hi = kb.gap_interval(_run(60, 100, 60), _run(85, 85, 80))
    assert d == pytest.approx(0.35) and lo > 0
    assert kb.gap_interval(_run(60, 100, 60), _run(60, 100, 60))[1:] == (0.0, 0.0)  # a run against itself: exactly no change
    bare = kb.ConvnetRun('b', 78, 1, 1, {}, test_hits=_hits(50))
    with pytest.raises(ValueError, match='no train_hits'): kb.gap_interval(bare)

def test_lesson_check_has_three_verdicts():
    plain, aug = _run(60, 100, 60), _run(85, 85, 80)
    good = kb.keras_lesson(plain, aug)
    assert (good.overfits, good.narrows, good.lifts, good.tuned_wins) == ('shown', 'shown', 'shown', None)
    assert good.line.startswith('Lesson check: ') and good.line.endswith('→ shown') and '(DLwP ch. 8; seed 002)' in good.line
    assert 'beats both' not in good.line  # only checked with a pretrained model's hits (full mode)
    full = kb.keras_lesson(plain, aug, _hits(98), 'fastai x')
    assert full.tuned_wins == 'shown' and 'fastai x 98.0%' in full.line and 'beats both' in full.line
    assert kb.keras_lesson(plain, aug, _hits(86)).tuned_wins == "can't tell"  # one point above: inside the spread
    same = kb.keras_lesson(plain, plain)
    assert same.narrows == "can't tell" and same.lifts == "can't tell" and same.line.endswith("→ can't tell")
    assert kb.keras_lesson(aug, plain).line.endswith('→ contradicted')  # wider gap and lower test accuracy with "augmentation"
    with pytest.raises(ValueError, match='different test images'): kb.keras_lesson(plain, aug, _hits(98).rename(lambda i: 'x'+i))
    assert kb.joint_verdict(['shown', 'shown']) == 'shown' and kb.joint_verdict(["can't tell", 'contradicted']) == 'contradicted'
    assert kb.joint_verdict([]) == "can't tell"  # nothing measured: nothing shown

def test_comparison_table():
    rows = [dict(method='a', px=78, epochs='2', params=10, test_acc=0.5, secs_per_epoch=1.0),
            dict(method='b', px=64, epochs='1+2', params=20, test_acc=0.75, secs_per_epoch=2.0)]
    t = kb.comparison_table(rows)
    assert list(t.index) == ['a', 'b'] and list(t.columns) == ['px', 'epochs', 'params', 'test acc', 's/epoch']
    assert t.loc['b', 'test acc'] == 0.75
    assert not hasattr(kb, 'results_table')  # chapter 10 owns results_table

@pytest.mark.skipif(__import__('importlib').util.find_spec('keras') is None, reason='the keras extra is not installed')
def test_fit_without_tensorflow_and_outside_cwd(tmp_path, split):
    "A real fit in a fresh process: no TensorFlow module loaded, checkpoint in the cache, nothing written to the cwd"
    cwd, cache = tmp_path/'cwd', tmp_path/'cache'
    cwd.mkdir()
    code = textwrap.dedent(f"""
        import sys
        from kimchi_course.keras_baseline import make_convnet, fit_convnet
        run = fit_convnet(make_convnet(78, augment=True, dropout=0.5, name='t'), {str(split)!r}, epochs=1, bs=4, verbose=0)
        tf = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'tf_keras')]
        assert len(run.test_hits) == 8 and abs(run.test_hits.mean() - run.test_acc) < 1e-6
        assert len(run.train_hits) == 8 and len(run.valid_hits) == 8
        print(run.checkpoint, run.test_acc, len(run.history['loss']), tf)
    """)
    env = {**os.environ, 'KIMCHI_CACHE': str(cache), 'PYTHONWARNINGS': 'ignore'}
    env.pop('KERAS_BACKEND', None)
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300, cwd=cwd, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    ckpt, acc, n, tf = out.stdout.strip().splitlines()[-1].split(' ', 3)
    assert Path(ckpt).parent == cache/'keras' and re.fullmatch(r't-\d+\.keras', Path(ckpt).name) and Path(ckpt).exists() # one file per process
    assert 0 <= float(acc) <= 1 and n == '1' and tf == '[]'
    assert list(cwd.iterdir()) == []
