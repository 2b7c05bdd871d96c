"""The model file (`kimchi_course.model_file`, chapter 03a): the same predictions as fastai's own `get_preds` on photos
of many shapes and under several validation pipelines, one clear error for every file that isn't a model, one reason
per photo that can't be used. That predicting imports neither fastai nor torchvision is checked once, on `kimchi-course
predict`, in tests/test_predict_cli.py."""
from pathlib import Path
import numpy as np, pytest, torch
from PIL import Image
from kimchi_course.core import KIMCHI_SLUGS, course_settings
from kimchi_course.pretraining import course_learner
from kimchi_course.model_file import *
from fastai.vision.all import (DataBlock, ImageBlock, CategoryBlock, RandomSplitter, Resize, Normalize, Transform, TensorImage,
                               aug_transforms, imagenet_stats, get_image_files, parent_label, Learner, CrossEntropyLossFlat, nn)

SHAPES = [(30, 50), (200, 90), (641, 480), (1000, 1000), (45, 45), (97, 301), (333, 250), (64, 900)]

@pytest.fixture(scope='module')
def photos(toy_kimchi, tmp_path_factory):
    "Toy photos re-saved in eight sizes and aspect ratios, JPEG and PNG"
    root = tmp_path_factory.mktemp('shapes')
    src = sorted(toy_kimchi.rglob('*.jpg'))[::5][:len(SHAPES)]
    out = []
    for i,(f,wh) in enumerate(zip(src, SHAPES)):
        out.append(root/f'photo{i}.{"png" if i%2 else "jpg"}'); Image.open(f).convert('RGB').resize(wh).save(out[-1])
    return out

@pytest.fixture(scope='module')
def saved(tiny_learner, tmp_path_factory):
    return save_model(tiny_learner, tmp_path_factory.mktemp('model')/'model.pt', meta=dict(note='tiny', accuracy=0.5))

def fastai_probs(learn, files):
    with learn.no_bar(): return learn.get_preds(dl=learn.dls.test_dl(files, bs=3))[0]

def test_same_as_get_preds(tiny_learner, saved, photos):
    km = load_model(saved, device='cpu')
    p, errors = km.predict(photos, bs=3)
    p0 = fastai_probs(tiny_learner, photos)
    assert errors == {}
    assert torch.equal(p.argmax(1), p0.argmax(1))
    assert (p - p0).abs().max() < 1e-3
    assert km.vocab == list(KIMCHI_SLUGS) and km.meta == dict(note='tiny', accuracy=0.5) and km.arch == 'resnet18'

def _variant(learn, toy, item, batch):
    "A Learner with `learn`'s model (and arch) on DataLoaders with another validation pipeline"
    dls = DataBlock(blocks=(ImageBlock, CategoryBlock(vocab=KIMCHI_SLUGS)), get_items=get_image_files, get_y=parent_label,
                    splitter=RandomSplitter(0.2, seed=0), item_tfms=item, batch_tfms=batch).dataloaders(toy, bs=8, num_workers=0)
    l = Learner(dls, learn.model, loss_func=CrossEntropyLossFlat()); l.arch = learn.arch
    return l

NORM = Normalize.from_stats(*imagenet_stats)
@pytest.mark.parametrize('item, batch', [
    (Resize(96), [*aug_transforms(size=32, min_scale=0.75), NORM]), # shrinks more than 2x: fastai's area pre-shrink
    (Resize(40, method='squish'), [*aug_transforms(size=32, min_scale=0.75), NORM]),
    (Resize(40, method='pad'), [*aug_transforms(size=32, min_scale=0.75), NORM]),
    (Resize(40, method='pad', pad_mode='zeros'), [*aug_transforms(size=32, min_scale=0.75), NORM]),
    (Resize((40, 60)), [*aug_transforms(size=(32, 48), min_scale=0.75), NORM]), # not square
    (Resize(100), [*aug_transforms(size=32), NORM]), # min_scale=1: the affine step resizes
    (Resize(40), [*aug_transforms(size=32, min_scale=0.75)]), # no normalisation
], ids=['area', 'squish', 'pad', 'pad-zeros', 'rectangle', 'affine-resize', 'no-normalize'])
def test_other_pipelines(tiny_learner, toy_kimchi, photos, tmp_path, item, batch):
    l = _variant(tiny_learner, toy_kimchi, item, batch)
    p, errors = load_model(save_model(l, tmp_path/'m.pt'), device='cpu').predict(photos)
    p0 = fastai_probs(l, photos)
    assert errors == {} and torch.equal(p.argmax(1), p0.argmax(1)) and (p - p0).abs().max() < 1e-3

@pytest.mark.parametrize('arch', ['resnet34', 'resnet50', 'efficientnet_v2_s'])
def test_other_architectures(tiny_learner, photos, tmp_path, arch):
    "Deeper resnets (built without torchvision) and an architecture torchvision builds; custom head arguments too"
    l = course_learner(tiny_learner.dls, course_settings(pretrained=False, seed=1), arch=arch, lin_ftrs=[64], ps=0.1)
    km = load_model(save_model(l, tmp_path/'m.pt'), device='cpu')
    p0 = fastai_probs(l, photos[:3])
    assert (km.predict(photos[:3])[0] - p0).abs().max() < 1e-3
    assert [d['layer'] for d in km.info['head']].count('linear') == 2 and km.info['head'][4]['n_out'] == 64

def test_plain_torch_load(saved):
    info = torch.load(saved, weights_only=True)
    assert (info['format'], info['arch'], info['cut'], info['vocab']) == (MODEL_FORMAT, 'resnet18', 8, list(KIMCHI_SLUGS))
    assert info['item'] == dict(size=[40, 40], method='crop', pad_mode='reflection', resample=2)
    assert [s['op'] for s in info['batch']] == ['to_float', 'affine', 'crop_resize', 'normalize']
    assert info['batch'][2]['size'] == [32, 32]

def test_batches_and_images_agree(saved, photos):
    km = load_model(saved, device='cpu')
    a = km.predict(photos, bs=1)[0]; b = km.predict(photos, bs=64)[0]
    c = km.predict([Image.open(f) for f in photos])[0]
    assert torch.allclose(a, b, atol=1e-6) and torch.allclose(a, c, atol=1e-6)
    assert torch.allclose(km.predict(photos[0])[0], a[:1], atol=1e-6) # one path, not a list
    assert km.predict([])[0].shape == (0, 11)

def test_exif_orientation_applied(saved, photos, tmp_path):
    "A photo stored on its side with an EXIF 'rotate' tag is predicted as the upright photo"
    im = Image.open(photos[2]) # 641x480
    exif = Image.Exif(); exif[0x0112] = 6 # rotate 90° clockwise to display
    im.transpose(Image.Transpose.ROTATE_90).save(tmp_path/'side.png', exif=exif)
    im.save(tmp_path/'upright.png')
    p, _ = load_model(saved, device='cpu').predict([tmp_path/'side.png', tmp_path/'upright.png'])
    assert torch.allclose(p[0], p[1], atol=1e-6)

def test_bad_photos_reported_not_fatal(saved, photos, tmp_path):
    (tmp_path/'notes.jpg').write_text('a text file with a .jpg name'); (tmp_path/'empty.png').write_bytes(b'')
    b = photos[0].read_bytes(); (tmp_path/'truncated.jpg').write_bytes(b[:len(b)//3])
    items = [photos[0], tmp_path/'notes.jpg', tmp_path/'empty.png', tmp_path/'gone.jpg', tmp_path, tmp_path/'truncated.jpg', photos[1]]
    km = load_model(saved, device='cpu')
    p, errors = km.predict(items, bs=2)
    assert sorted(errors) == [1, 2, 3, 4, 5]
    assert errors[1].startswith('not an image file') and errors[2] == 'empty file (0 bytes)'
    assert errors[3] == 'no such file' and errors[4] == 'a folder, not a photo' and 'damaged' in errors[5]
    assert torch.isnan(p[1:6]).all() and torch.allclose(p[[0, 6]], km.predict([photos[0], photos[1]])[0])
    rows = list(km.iter_predict(items, bs=3))
    assert [r[0] for r in rows] == items and [r[2] is None for r in rows] == [True] + [False]*5 + [True]

@pytest.mark.parametrize('content', [b'', b'\x89PNG\r\n\x1a\n' + bytes(100), bytes(range(256))*4])
def test_not_torch(tmp_path, content):
    f = tmp_path/'x.pt'; f.write_bytes(content)
    with pytest.raises(ValueError, match='not a PyTorch file'): read_model_file(f)

def test_fastai_export_refused(tiny_learner, tmp_path):
    l = Learner(tiny_learner.dls, tiny_learner.model, loss_func=CrossEntropyLossFlat()) # export would reset the shared learner's optimiser
    l.export(tmp_path/'export.pkl')
    with pytest.raises(ValueError, match='load_learner'): load_model(tmp_path/'export.pkl')

def test_other_torch_files(tiny_learner, tmp_path):
    torch.save(tiny_learner.model.state_dict(), tmp_path/'sd.pt'); torch.save([1, 2, 3], tmp_path/'list.pt')
    for f in ('sd.pt', 'list.pt'):
        with pytest.raises(ValueError, match='not a kimchi-course model file'): read_model_file(tmp_path/f)

def _edited(src, dst, **changes):
    info = torch.load(src, weights_only=True)
    for k,v in changes.items():
        if v is None: info.pop(k)
        else: info[k] = v
    torch.save(info, dst); return dst

def test_damaged_files(saved, tmp_path):
    info = torch.load(saved, weights_only=True)
    with pytest.raises(ValueError, match='newer kimchi-course'): read_model_file(_edited(saved, tmp_path/'v.pt', version=99))
    with pytest.raises(ValueError, match='lacks vocab'): read_model_file(_edited(saved, tmp_path/'k.pt', vocab=None))
    with pytest.raises(ValueError, match='unknown head layers'): read_model_file(_edited(saved, tmp_path/'h.pt', head=info['head'] + [dict(layer='os.system')]))
    with pytest.raises(ValueError, match='11 outputs but 2 class names'): read_model_file(_edited(saved, tmp_path/'n.pt', vocab=['a', 'b']))
    with pytest.raises(ValueError, match="don't fit"): load_model(_edited(saved, tmp_path/'r.pt', arch='resnet34'))
    with pytest.raises(ValueError, match="torchvision has no architecture"): load_model(_edited(saved, tmp_path/'a.pt', arch='os.system'))
    sd = dict(info['state_dict']); sd.pop('1.8.weight')
    with pytest.raises(ValueError, match="don't fit"): load_model(_edited(saved, tmp_path/'w.pt', state_dict=sd))

def test_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match='no such model file'): load_model(tmp_path/'nope.pt')
    with pytest.raises(FileNotFoundError, match='a folder'): load_model(tmp_path)

def test_save_refuses_what_it_cannot_reproduce(tiny_learner, toy_kimchi, tmp_path):
    plain = Learner(tiny_learner.dls, nn.Sequential(nn.Flatten(), nn.LazyLinear(11)), loss_func=CrossEntropyLossFlat())
    with pytest.raises(ValueError, match='vision_learner'): save_model(plain, tmp_path/'p.pt')
    class Shift(Transform): # runs in validation too: the model file could not reproduce it
        def encodes(self, x:TensorImage): return x + 0.1
    l = _variant(tiny_learner, toy_kimchi, Resize(40), [*aug_transforms(size=32, min_scale=0.75), Shift(), NORM])
    with pytest.raises(ValueError, match="can't reproduce the batch transform Shift"): save_model(l, tmp_path/'s.pt')
    with pytest.raises(ValueError, match='plain values'): save_model(tiny_learner, tmp_path/'m.pt', meta=dict(where=tmp_path))
    assert list(tmp_path.iterdir()) == [] # nothing written, no temporary files left

def test_save_replaces_atomically(tiny_learner, tmp_path):
    f = tmp_path/'sub'/'model.pt'
    save_model(tiny_learner, f, meta=dict(v=1)); save_model(tiny_learner, f, meta=dict(v=2))
    assert read_model_file(f)['meta'] == dict(v=2) and [p.name for p in f.parent.iterdir()] == ['model.pt']

def _bomb(w:int, h:int)->bytes:
    "A tiny PNG whose header claims `w`×`h` pixels"
    import struct, zlib
    def chunk(t, b): return struct.pack('>I', len(b)) + t + b + struct.pack('>I', zlib.crc32(t+b) & 0xffffffff)
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0)) +
            chunk(b'IDAT', zlib.compress(b'\x00'*(3*w+1))) + chunk(b'IEND', b''))

def test_decompression_bombs_refused(saved, tmp_path):
    "A header claiming more pixels than PIL's limit is refused, whether PIL itself would only warn (1-2× the limit) or refuse"
    (tmp_path/'huge.png').write_bytes(_bomb(20_000, 20_000)); (tmp_path/'big.png').write_bytes(_bomb(10_000, 10_000))
    p, errors = load_model(saved, device='cpu').predict([tmp_path/'huge.png', tmp_path/'big.png'])
    assert errors[0] == 'refused: claims more than twice the pixels PIL allows (a possible decompression bomb)'
    assert errors[1].startswith('refused: claims 100,000,000 pixels') and torch.isnan(p).all()

def test_toy_pretrained_learner(tiny_learner, photos, tmp_path, monkeypatch):
    "A learner on chapter 02a's toy-pretrained builder (`toy_resnet18`, which wraps torchvision's resnet18) saves as a resnet18 and predicts as fastai does"
    from fastai.vision.all import vision_learner
    from kimchi_course.pretraining import toy_arch, toy_pretrained
    monkeypatch.setenv('KIMCHI_CACHE', str(tmp_path/'cache')) # the tiny backbone is built here, never in a shared cache
    tiny = dict(size=16, n_per_class=1, epochs=1, bs=16) # the real builder on a tiny source task: a quick build in the test cache
    l = vision_learner(tiny_learner.dls, toy_arch('resnet18', **tiny), pretrained=True)
    toy = torch.load(toy_pretrained('resnet18', **tiny, log=None)/'weights.pth', weights_only=True)
    assert l.arch.__name__ == 'toy_resnet18' and torch.equal(l.model[0][0].weight, toy['conv1.weight']) # the toy weights are loaded
    km = load_model(save_model(l, tmp_path/'m.pt'), device='cpu')
    assert km.arch == 'resnet18' and km.info['arch'] == 'resnet18'
    p, errors = km.predict(photos)
    p0 = fastai_probs(l, photos)
    assert errors == {} and torch.equal(p.argmax(1), p0.argmax(1)) and (p - p0).abs().max() < 1e-3
