"Safe model files (`kimchi_course.interpret`): round trip, and one clear error for every file that isn't one"
import warnings
from pathlib import Path
import numpy as np, pytest, torch
from PIL import Image
from kimchi_course.settings import seed_everything
from kimchi_course.data import KIMCHI_SLUGS, kimchi_dls
from kimchi_course.interpret import *
from fastai.vision.all import vision_learner, resnet18, Learner, nn, CrossEntropyLossFlat

@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    "A tiny hand-made kimchi folder (2 images per class), its DataLoaders, a learner and its safe file"
    root = tmp_path_factory.mktemp('tiny')
    rng = np.random.default_rng(0)
    for i,c in enumerate(KIMCHI_SLUGS):
        (root/'data'/c).mkdir(parents=True)
        for j in range(3):
            a = rng.integers(0, 255, (40+7*j, 50, 3), dtype=np.uint8); a[..., i%3] = 20*i
            Image.fromarray(a).save(root/'data'/c/f'img_{j}.jpg')
    seed_everything(0)
    dls = kimchi_dls(root/'data', size=32, presize=40, bs=8, seed=0, workers=0)
    learn = vision_learner(dls, resnet18, pretrained=False)
    learn.model.eval()
    with torch.no_grad(): # move the batch-norm statistics away from their defaults, so a fresh model predicts differently
        learn.model.train(); learn.model(dls.one_batch()[0]); learn.model.eval()
    return root, dls, learn, save_safe(learn, root/'model.pt', meta=dict(note='tiny'))

def test_round_trip(tiny):
    root, dls, learn, f = tiny
    p0,_ = learn.get_preds()
    p1,_ = load_safe(f, dls).get_preds()
    assert torch.equal(p0, p1)
    fresh,_ = vision_learner(dls, resnet18, pretrained=False).get_preds()
    assert not torch.allclose(fresh, p0) # the round trip is not passing by luck
    pr = KimchiPredictor(f, device='cpu')
    p2 = pr.predict(list(dls.valid_ds.items), bs=3)
    assert torch.allclose(p2, p0, atol=1e-4)
    assert pr.info['meta'] == dict(note='tiny') and pr.vocab == list(KIMCHI_SLUGS)

def test_plain_torch_load(tiny):
    info = torch.load(tiny[3], weights_only=True)
    assert info['arch'] == 'resnet18' and info['vocab'] == list(KIMCHI_SLUGS)
    assert info['presize'] == (40, 40) and info['size'] == (32, 32)

@pytest.mark.parametrize('content,msg', [
    (b'', 'not a PyTorch file'),
    (b'\x89PNG\r\n\x1a\n' + bytes(100), 'not a PyTorch file'),
    (bytes(range(256))*4, 'not a PyTorch file'),
])
def test_not_torch(tmp_path, content, msg):
    f = tmp_path/'x.pt'; f.write_bytes(content)
    with pytest.raises(ValueError, match=msg): read_safe(f)

def test_fastai_export(tiny, tmp_path):
    learn = tiny[2]
    learn.export(tmp_path/'export.pkl')
    with pytest.raises(ValueError, match='load_learner'): read_safe(tmp_path/'export.pkl')
    with pytest.raises(ValueError, match='load_learner'): KimchiPredictor(tmp_path/'export.pkl')

def test_other_torch_files(tiny, tmp_path):
    learn = tiny[2]
    torch.save(learn.model.state_dict(), tmp_path/'sd.pt')
    torch.save([1, 2, 3], tmp_path/'list.pt')
    for f in ('sd.pt', 'list.pt'):
        with pytest.raises(ValueError, match='not a kimchi-course safe model'): read_safe(tmp_path/f)

def _edited(src, dst, **changes):
    info = torch.load(src, weights_only=True); info.update(changes)
    for k,v in changes.items():
        if v is None: info.pop(k)
    torch.save(info, dst); return dst

def test_damaged_files(tiny, tmp_path):
    f = tiny[3]
    with pytest.raises(ValueError, match='newer kimchi-course'): read_safe(_edited(f, tmp_path/'v.pt', version=99))
    with pytest.raises(ValueError, match='lacks vocab'): read_safe(_edited(f, tmp_path/'k.pt', vocab=None))
    with pytest.raises(ValueError, match='architecture'): read_safe(_edited(f, tmp_path/'a.pt', arch='os.system'))
    with pytest.raises(ValueError, match="don't fit"): KimchiPredictor(_edited(f, tmp_path/'r.pt', arch='resnet34'))
    with pytest.raises(ValueError, match="don't fit"): KimchiPredictor(_edited(f, tmp_path/'n.pt', vocab=['a', 'b']))

def test_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match='does not exist'): read_safe(tmp_path/'nope.pt')
    with pytest.raises(FileNotFoundError): read_safe(tmp_path)

def test_save_needs_vision_learner(tiny, tmp_path):
    dls = tiny[1]
    plain = Learner(dls, nn.Sequential(nn.Flatten(), nn.LazyLinear(11)), loss_func=CrossEntropyLossFlat())
    with pytest.raises(ValueError, match='vision_learner'): save_safe(plain, tmp_path/'p.pt')
    assert not (tmp_path/'p.pt').exists()

def test_custom_head(tiny, tmp_path):
    dls = tiny[1]
    learn = vision_learner(dls, resnet18, pretrained=False, lin_ftrs=[64])
    f = save_safe(learn, tmp_path/'h.pt', model_kwargs=dict(lin_ftrs=[64]))
    assert KimchiPredictor(f).predict(dls.valid_ds.items[:2]).shape == (2, 11)
    g = save_safe(learn, tmp_path/'h2.pt') # forgot the head arguments
    with pytest.raises(ValueError, match='model_kwargs'): KimchiPredictor(g)

def test_predictor_bad_files(tiny, tmp_path):
    pr = KimchiPredictor(tiny[3])
    (tmp_path/'notes.jpg').write_text('not a picture')
    with pytest.raises(FileNotFoundError, match='no such image file'): pr.predict([tmp_path/'gone.jpg'])
    with pytest.raises(ValueError, match="can't read"): pr.predict([tmp_path/'notes.jpg'])
    assert list(pr.classify(tiny[1].valid_ds.items[0]).columns) == ['file', 'slug', 'hangul', 'prob']
