"cam: what the notebook holds badly (many image shapes through fastai's real pipeline, hooks on a real resnet, boxes and maps of a trained learner)"
import numpy as np, pytest, torch
from PIL import Image
from fastai.vision.all import Pipeline, PILImage, Normalize, create_vision_model, resnet18, nn
from kimchi_course.dataloaders import kimchi_block
from kimchi_course.crop_boxes import read_crop_boxes
from kimchi_course.cam import *

def _valid_pipeline(size, presize):
    "The course DataBlock's validation transforms, without the normalization (so pixels stay 0-1)"
    db = kimchi_block(size=size, presize=presize)
    items = Pipeline(db.item_tfms, split_idx=1)
    batch = Pipeline([t for t in db.batch_tfms if not isinstance(t, Normalize)], split_idx=1)
    return lambda im: batch(items(im)[None])[0]

@pytest.mark.parametrize('size,presize', [(64, 96), (224, 460), (50, 77)])
def test_valid_box_matches_fastai_pipeline(size, presize):
    rng, tfm = np.random.default_rng(size), _valid_pipeline(size, presize)
    for _ in range(25):
        W,H = (int(v) for v in rng.integers(60, 700, 2))
        w,h = int(rng.integers(W//5, W//2)), int(rng.integers(H//5, H//2))
        x,y = int(rng.integers(0, W-w)), int(rng.integers(0, H-h))
        a = np.zeros((H, W, 3), np.uint8); a[y:y+h, x:x+w] = 255
        out = tfm(PILImage.create(a))
        bx,by,bw,bh = valid_box((x, y, w, h), (W, H), presize, size)
        # compare areas of the painted region and of the mapped box (robust to the blurred edges)
        seen = float(out.mean(0).clamp(0, 1).sum())
        assert seen == pytest.approx(bw*bh, abs=2*(bw+bh)*1.0 + 2), (W, H, (x, y, w, h))
        if bw*bh > 4:  # and where it is: the mass-weighted centre
            ys,xs = torch.meshgrid(torch.arange(size)+0.5, torch.arange(size)+0.5, indexing='ij')
            m = out.mean(0).clamp(0, 1)
            assert float((m*xs).sum()/m.sum()) == pytest.approx(bx+bw/2, abs=1.0)
            assert float((m*ys).sum()/m.sum()) == pytest.approx(by+bh/2, abs=1.0)

def test_in_box_share_of_upsampled_uniform_map_is_area():
    cam = upsample_cams(torch.ones(1, 2, 2), 64)[0]
    for box in [(0, 0, 64, 64), (10.3, 5.5, 20.2, 30.1), (60, 60, 10, 10)]:
        x,y,w,h = box
        inside = (min(x+w, 64)-x)*(min(y+h, 64)-y)
        assert in_box_share(cam, box) == pytest.approx(inside/64**2, rel=1e-5)

def test_hooks_removed_on_real_resnet_even_after_errors():
    m = create_vision_model(resnet18, 11, pretrained=False)
    body = m[0]
    for _ in range(3):
        acts = capture_activations(m, [body[2], body[7]], torch.randn(2, 3, 64, 64))
        cam,idx,out = grad_cam(m, torch.randn(2, 3, 64, 64), body[7])
        with pytest.raises(RuntimeError): grad_cam(m, torch.randn(2, 4, 64, 64), body[7])
        with pytest.raises(RuntimeError): capture_activations(m, [body[7]], torch.randn(2, 4, 64, 64))
    assert count_hooks(m) == 0
    assert [tuple(a.shape) for a in acts] == [(2, 64, 32, 32), (2, 512, 2, 2)]
    assert cam.shape == (2, 2, 2) and float(cam.max()) <= 1

def test_grad_cam_does_not_touch_parameter_grads_or_mode():
    m = create_vision_model(resnet18, 11, pretrained=False).train()
    grad_cam(m, torch.randn(2, 3, 64, 64), m[0][7], cls=[3, 4])
    assert m.training
    assert all(p.grad is None for p in m.parameters())

def test_item_boxes_follow_the_properties_files(toy_kimchi, tmp_path):
    files = sorted(toy_kimchi.rglob('*.jpg'))[:6]
    boxes = item_boxes(files, presize=96, size=64)
    for f,b in zip(files, boxes):
        raw = read_crop_boxes(f.parent)[f.stem]
        assert b == pytest.approx(valid_box(raw, Image.open(f).size, 96, 64))
    stray = tmp_path/'no-boxes'/'x.jpg'; stray.parent.mkdir(); Image.open(files[0]).save(stray)
    assert item_boxes([stray], 96, 64) == [None]  # a folder without crop_area.properties: no box

def test_cam_table_of_a_trained_learner(tiny_learner):
    learn = tiny_learner
    vc = valid_cams(learn, learn.model[0][-1])
    n = len(learn.dls.valid_ds)
    assert vc['cam'].shape[0] == n and count_hooks(learn.model) == 0
    assert (vc['pred'] == vc['prob'].argmax(1)).all() and (vc['cls'] == vc['pred']).all()
    presize = next(t.size[0] for t in learn.dls.valid.after_item if type(t).__name__ == 'Resize')
    size = learn.dls.valid.one_batch()[0].shape[-1]
    t = cam_box_table(vc, item_boxes(learn.dls.valid_ds.items, presize, size), size, learn.dls.vocab, learn.dls.valid_ds.items)
    assert len(t) == n and t.box_area.between(0, 1).all() and t.cam_in_box.dropna().between(0, 1 + 1e-6).all()
    assert t.correct.tolist() == [a == b for a,b in zip(t.true, t.pred)]
    s = summarize_in_box(t)
    assert s.images.sum() == n

def test_share_matrix_agrees_with_in_box_share():
    g = torch.Generator().manual_seed(0)
    cams = torch.rand(5, 20, 24, generator=g)**4; cams[3] = 0   # one all-zero map
    boxes = [(1.5, 2.25, 10, 7.5), (0, 0, 24, 20), (-3, 15.5, 9, 9), (12.2, 0.4, 30, 4.1), (23.5, 19.5, 1, 1)]
    m = share_matrix(cams, boxes)
    assert m.shape == (5, 5) and m[3].isnan().all()
    for i in (0, 1, 2, 4):
        for j,b in enumerate(boxes): assert float(m[i, j]) == pytest.approx(in_box_share(cams[i], b), abs=1e-5)
    assert torch.allclose(m[:, 1][~m[:, 1].isnan()], torch.ones(4))   # the whole image holds all of every map
    other = other_box_share(m)
    for i in (0, 1, 2, 4): assert float(other[i]) == pytest.approx(float((m[i].sum() - m[i, i])/4), abs=1e-6)
    with pytest.raises(ValueError, match='square'): other_box_share(m[:, :3])
    with pytest.raises(ValueError, match=r'\[n, H, W\]'): share_matrix(cams[0], boxes)

def test_share_baselines_of_a_trained_learner(tiny_learner):
    learn = tiny_learner
    vc = valid_cams(learn, learn.model[0][-2])
    presize = next(t.size[0] for t in learn.dls.valid.after_item if type(t).__name__ == 'Resize')
    size = learn.dls.valid.one_batch()[0].shape[-1]
    boxes = item_boxes(learn.dls.valid_ds.items, presize, size)
    b = share_baselines(vc, boxes, size)
    t = cam_box_table(vc, boxes, size)
    assert b.image.tolist() == [i for i in range(len(t)) if not np.isnan(t.cam_in_box[i])]
    assert np.allclose(b.own, t.cam_in_box.dropna(), atol=1e-4) and np.allclose(b.area, t.box_area[b.image])
    assert b[['own', 'other', 'area']].stack().between(0, 1 + 1e-6).all()
    assert len(share_baselines(vc, [None]*len(boxes), size)) == 0   # a source without boxes: nothing to measure

def test_deepest_stage_follows_the_input_size():
    "The overlays' stage: the deepest whose map has at least 4 × 4 cells, measured on a real resnet18 body"
    body = create_vision_model(resnet18, 11, pretrained=False)[0].eval()
    stages = dict(zip(['layer1', 'layer2', 'layer3', 'layer4'], body[4:8]))
    picks = {}
    for size in (32, 64, 128, 224):
        acts = capture_activations(body, list(stages.values()), torch.randn(1, 3, size, size))
        picks[size] = deepest_stage({k:tuple(a.shape[-2:]) for k,a in zip(stages, acts)})
    assert picks == {32: 'layer2', 64: 'layer3', 128: 'layer4', 224: 'layer4'}
