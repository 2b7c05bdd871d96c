"Keras chapter (09): lazy, TensorFlow-free Keras, clear errors, checkpoints outside the working folder"
import os, subprocess, sys, textwrap
from pathlib import Path
import numpy as np, pytest
from PIL import Image
import kimchi_course.keras_baseline as kb

def _tiny_split(root:Path, n:int=4, size:int=90):
    "A cats_vs_dogs_small-shaped tree of random images: train/validation/test × cat/dog"
    rng = np.random.default_rng(0)
    for split in ('train', 'validation', 'test'):
        for c in ('cat', 'dog'):
            (root/split/c).mkdir(parents=True)
            for i in range(n): Image.fromarray(rng.integers(0, 255, (size, size+10, 3), dtype=np.uint8)).save(root/split/c/f'{c}.{i}.jpg')
    return root

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

def test_loader_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='not a folder'): kb.keras_loader(tmp_path/'missing')
    for c in ('a', 'b', 'c'):
        (tmp_path/c).mkdir(); Image.new('RGB', (8, 8)).save(tmp_path/c/'x.jpg')
    with pytest.raises(ValueError, match='exactly 2'): kb.keras_loader(tmp_path)

def test_convnet_sizes():
    assert kb.convnet_side(180) == 7 and kb.min_convnet_size() == 78

@pytest.mark.skipif(__import__('importlib').util.find_spec('keras') is None, reason='the keras extra is not installed')
def test_fit_without_tensorflow_and_outside_cwd(tmp_path):
    "A real fit in a fresh process: no TensorFlow module loaded, checkpoint in the cache, nothing written to the cwd"
    data, cwd, cache = _tiny_split(tmp_path/'data'), tmp_path/'cwd', tmp_path/'cache'
    cwd.mkdir()
    code = textwrap.dedent(f"""
        import sys
        from kimchi_course.keras_baseline import make_convnet, fit_convnet
        run = fit_convnet(make_convnet(78, augment=True, dropout=0.5, name='t'), {str(data)!r}, epochs=1, bs=4, verbose=0)
        tf = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'tf_keras')]
        print(run.checkpoint, run.test_acc, len(run.history['loss']), tf)
    """)
    env = {**os.environ, 'KIMCHI_CACHE': str(cache), 'PYTHONWARNINGS': 'ignore'}
    env.pop('KERAS_BACKEND', None)
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300, cwd=cwd, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    ckpt, acc, n, tf = out.stdout.strip().splitlines()[-1].split(' ', 3)
    assert Path(ckpt) == cache/'keras'/'t.keras' and Path(ckpt).exists()
    assert 0 <= float(acc) <= 1 and n == '1' and tf == '[]'
    assert list(cwd.iterdir()) == []
