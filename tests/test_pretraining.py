"""The synthetic source task, the toy-pretrained backbone (cached, locked, deterministic) and its fastai builder,
at a tiny scale (16-px images, one image per class, one epoch)."""
import json, threading
import numpy as np, pandas as pd, pytest, torch
from kimchi_course.core import KIMCHI_SLUGS, course_settings, read_marker
import kimchi_course.pretraining as pt
from kimchi_course.source_task import *
from kimchi_course.pretraining import *

TINY = dict(size=16, n_per_class=1, epochs=1, bs=16)

@pytest.fixture
def cache(tmp_path, monkeypatch):
    "A course cache of this test's own"
    monkeypatch.setenv('KIMCHI_CACHE', str(tmp_path/'cache'))
    return tmp_path/'cache'

def test_source_classes_are_generic():
    assert len(SOURCE_CLASSES) >= 30 and len(set(SOURCE_CLASSES)) == len(SOURCE_CLASSES)
    assert not set(SOURCE_CLASSES) & set(KIMCHI_SLUGS)
    assert not {f'{k}-{p}' for k,p in KIMCHI_LIKE} & set(SOURCE_CLASSES)
    assert set(KIMCHI_LIKE.values()) == set(KIMCHI_SLUGS) # each kimchi class has its look-alike pair removed

def test_source_image_is_deterministic_and_checked():
    a, b = (np.asarray(source_image('tangle-red', 32, seed='x')) for _ in range(2))
    assert a.shape == (32, 32, 3) and (a == b).all()
    assert (a != np.asarray(source_image('tangle-red', 32, seed='y'))).any()
    with pytest.raises(ValueError, match='not a source class'): source_image('pa-kimchi')
    with pytest.raises(ValueError, match='too small'): source_image('coins-red', 4)

def test_every_class_draws():
    for c in SOURCE_CLASSES: assert np.asarray(source_image(c, 16, seed=1)).std() > 0, c

def test_make_source_task(cache):
    p = make_source_task(n_per_class=2, n_valid=1, size=16, seed=3)
    assert p.parent == cache and read_marker(p, SOURCE_MARKER)['version'] == SOURCE_VERSION
    t = load_source_task(p)
    assert t['x'].shape == (2*len(SOURCE_CLASSES), 3, 16, 16) and t['x'].dtype == torch.uint8
    assert sorted(t['y'].tolist()) == sorted(list(range(len(SOURCE_CLASSES)))*2)
    q = make_source_task(cache/'other', n_per_class=2, n_valid=1, size=16, seed=3)
    assert (q/'train_x.npy').read_bytes() == (p/'train_x.npy').read_bytes()
    assert make_source_task(n_per_class=2, n_valid=1, size=16, seed=4) != p # another seed, another folder
    with pytest.raises(ValueError, match='size=8'): make_source_task(size=8)
    with pytest.raises(FileNotFoundError, match='not a source task'): load_source_task(cache)

def _sd(p): return torch.load(p/'weights.pth', weights_only=True)

def test_toy_pretrained_same_arguments_same_weights(tmp_path, monkeypatch):
    monkeypatch.setenv('KIMCHI_CACHE', str(tmp_path/'a')); a = toy_pretrained(**TINY, log=None)
    monkeypatch.setenv('KIMCHI_CACHE', str(tmp_path/'b')); b = toy_pretrained(**TINY, log=None)
    c = toy_pretrained(**TINY, seed=1, log=None)
    wa, wb, wc = _sd(a), _sd(b), _sd(c)
    assert a != b and a.name == b.name and set(wa) == set(wb)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not torch.equal(wa['conv1.weight'], wc['conv1.weight'])
    assert 'fc.weight' not in wa # the source classifier is not part of the backbone

def test_toy_pretrained_cached_and_reported(cache):
    lines = []
    p = toy_pretrained(**TINY, log=lines.append)
    assert len(lines) == 2 and 'epoch 1/1' in lines[-1] # a header, then one line per epoch (no terminal here)
    rep = json.loads((p/'report.json').read_text())
    assert rep['source_version'] == SOURCE_VERSION and rep['args']['arch'] == 'resnet18' and 0 <= rep['source_accuracy'] <= 1
    assert rep['cpu_seconds'] > 0 and len(rep['history']) == 1
    assert str(SOURCE_VERSION) in p.name and '16px' in p.name and 'seed0' in p.name
    assert toy_pretrained(**TINY, log=lines.append) == p and len(lines) == 2 # reused, not retrained

def test_toy_pretrained_stale_version_is_rebuilt(cache, monkeypatch):
    p = toy_pretrained(**TINY, log=None)
    monkeypatch.setattr(pt, 'SOURCE_VERSION', SOURCE_VERSION + 1)
    lines = []
    q = toy_pretrained(**TINY, log=lines.append)
    assert q != p and lines and json.loads((q/'report.json').read_text())['source_version'] == SOURCE_VERSION + 1

def test_toy_pretrained_lock_builds_once(cache):
    lines, out = [], []
    ts = [threading.Thread(target=lambda: out.append(toy_pretrained(**TINY, seed=5, log=lines.append))) for _ in range(2)]
    for t in ts: t.start()
    for t in ts: t.join()
    assert len(out) == 2 and out[0] == out[1]
    assert sum(l.startswith('toy-pretraining') for l in lines) == 1 # the second waited for the lock, then reused the result

def test_toy_pretrained_bad_arguments():
    with pytest.raises(ValueError, match='unknown architecture'): toy_pretrained('vgg16')
    with pytest.raises(ValueError, match='epochs=0'): toy_pretrained(epochs=0)

def test_toy_arch_with_vision_learner(cache, toy_kimchi):
    from fastai.vision.all import vision_learner, resnet18, accuracy, nn
    from fastai.vision.learner import model_meta
    from kimchi_course.dataloaders import kimchi_dls
    b = toy_arch('resnet18', 16, 0, n_per_class=1, epochs=1, bs=16)
    assert toy_arch('resnet18', 16, 0, n_per_class=1, epochs=1, bs=16) is b and b.__name__ == 'toy_resnet18' and b.__wrapped__ is resnet18
    assert model_meta[b] == model_meta[resnet18]
    dls = kimchi_dls(toy_kimchi, size=32, presize=40, bs=8, seed=0, workers=0)
    w = _sd(toy_pretrained(**TINY, log=None))
    learn = vision_learner(dls, b, pretrained=True, metrics=accuracy)
    assert torch.equal(learn.model[0][0].weight.detach(), w['conv1.weight']) # the body starts from the toy weights
    assert len(learn.splitter(learn.model)) == 3 # resnet18's own split: fine_tune, freeze and slice LRs work as with ImageNet
    convs = [p.requires_grad for m in learn.model[0].modules() if isinstance(m, nn.Conv2d) for p in m.parameters()]
    assert not any(convs) # frozen after pretrained=True, as fastai does with ImageNet weights
    rnd = vision_learner(dls, b, pretrained=False, metrics=accuracy)
    assert not torch.equal(rnd.model[0][0].weight.detach(), w['conv1.weight'])

def test_course_learner_picks_the_weights(cache, toy_kimchi, monkeypatch):
    from torchvision.models import resnet18
    from kimchi_course.dataloaders import kimchi_dls
    dls = kimchi_dls(toy_kimchi, size=32, presize=40, bs=8, seed=0, workers=0)
    tiny = toy_arch('resnet18', 16, 0, n_per_class=1, epochs=1, bs=16)
    monkeypatch.setattr(pt, 'toy_arch', lambda name: tiny) # the tiny backbone stands in for the course's one
    smoke = course_settings('smoke', env={})
    learn = course_learner(dls, smoke, pretrained=True)
    assert learn.arch is tiny and [m.name for m in learn.metrics] == ['accuracy', 'error_rate', 'precision_score', 'recall_score']
    assert course_learner(dls, smoke, pretrained=False).arch is resnet18
    a, b = course_learner(dls, smoke, pretrained=False), course_learner(dls, smoke, pretrained=False)
    assert torch.equal(a.model[1][-1].weight, b.model[1][-1].weight) # seeded: same head
    assert not torch.equal(a.model[1][-1].weight, course_learner(dls, smoke, pretrained=False, seed=1).model[1][-1].weight)

def test_transfer_lesson():
    runs = pd.DataFrame(dict(init=['random', 'pretrained']*3, seed=[0, 0, 1, 1, 2, 2], head_only=[.1, .5, .2, .6, .15, .55],
                             fine_tuned=[.3, .8, .4, .9, .35, .85], n_valid=220))
    line = transfer_lesson(runs)
    assert line.startswith('Lesson check:') and line.endswith('→ shown') and '220 validation images' in line and '3 seeds' in line
    assert '(seeds 003 and 004)' in line and 'paired by seed' in line
    assert transfer_lesson(runs.assign(fine_tuned=[.3, .8, .85, .9, .35, .85])).endswith("→ can't tell") # gains .5, .05, .5: the interval holds 0
    assert transfer_lesson(runs.assign(head_only=[.1, .5, .6, .6, .15, .55])).endswith("→ can't tell")
    assert transfer_lesson(runs.assign(fine_tuned=[.8, .3, .9, .4, .85, .35])).endswith('→ contradicted') # random ahead in every seed
    s = arm_summary(runs)
    assert s.loc[('fine_tuned', 'pretrained'), 'mean'] == pytest.approx(.85) and s.loc[('head_only', 'random'), 'max'] == .2

def test_build_toy_weights_command(tmp_path, monkeypatch):
    "The documented command that makes the committed file, at a small scale; `toy_pretrained` then copies it instead of training"
    import hashlib, subprocess, sys
    from pathlib import Path
    out = tmp_path/'weights'
    r = subprocess.run([sys.executable, str(Path(__file__).parent.parent/'tools'/'build_toy_weights.py'), '--size', '16', '--n-per-class', '1',
                        '--epochs', '1', '--bs', '16', '--out', str(out)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    (f,), (m,) = list(out.glob('*.pth')), list(out.glob('*.json'))
    man = json.loads(m.read_text())
    assert man['sha256'] == hashlib.sha256(f.read_bytes()).hexdigest() and man['fingerprint'] == source_fingerprint()
    assert man['want']['args'] == dict(arch='resnet18', seed=0, lr=3e-3, **TINY) and man['report']['threads'] == BUILD_THREADS
    monkeypatch.setenv('KIMCHI_CACHE', str(tmp_path/'cache')); monkeypatch.setenv('KIMCHI_TOY_WEIGHTS', str(out))
    lines = []
    p = toy_pretrained(**TINY, log=lines.append)
    assert lines == [] and (p/'weights.pth').read_bytes() == f.read_bytes() # copied, not trained
    man['sha256'] = '0'*64; m.write_text(json.dumps(man)) # a file that doesn't match its manifest is never used
    monkeypatch.setenv('KIMCHI_CACHE', str(tmp_path/'cache2'))
    toy_pretrained(**TINY, log=lines.append)
    assert 'checksum' in lines[0] and 'epoch 1/1' in lines[-1], lines

def test_committed_weights_are_current(tmp_path, monkeypatch):
    "The committed backbone (weights/) fits the course's default arguments and this code's source task: no checkout pays for a rebuild"
    monkeypatch.setenv('KIMCHI_CACHE', str(tmp_path)); monkeypatch.delenv('KIMCHI_TOY_WEIGHTS', raising=False)
    def stop(line): raise AssertionError(f"{line} (the committed weights are missing or stale: run `python tools/build_toy_weights.py`)")
    p = toy_pretrained(log=stop) # the defaults every chapter uses
    rep = json.loads((p/'report.json').read_text())
    assert rep['built_by'].startswith('committed') and rep['source_accuracy'] > 5/len(SOURCE_CLASSES)

@pytest.mark.parametrize('steps', [1, 3, 4, 5])
def test_pretrain_any_number_of_steps(steps):
    "A one-cycle schedule over very few steps divides by zero in torch (4 steps at pct_start 0.25): `pretrain` must train anyway"
    from torchvision.models import resnet18
    from kimchi_course.pretraining import pretrain
    g = torch.Generator().manual_seed(0)
    task = dict(x=torch.randint(0, 256, (2*steps, 3, 16, 16), dtype=torch.uint8, generator=g), y=torch.arange(2*steps) % 3,
                valid_x=torch.randint(0, 256, (3, 3, 16, 16), dtype=torch.uint8, generator=g), valid_y=torch.arange(3))
    hist = pretrain(resnet18(num_classes=3), task, epochs=1, bs=2, log=None)
    assert len(hist) == 1 and 0 <= hist[0]['valid_accuracy'] <= 1
