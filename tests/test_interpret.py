"""Reading a first model (`kimchi_course.interpret`, chapter 03): per-class numbers against scikit-learn, the dish share, the
confusion figure (off pyplot), the validation frame, and training reported one line per epoch."""
import copy
import numpy as np, pytest, torch
from PIL import Image
from sklearn.metrics import classification_report, confusion_matrix
from kimchi_course.core import KIMCHI_SLUGS
from kimchi_course.interpret import *
from fastai.vision.all import Learner, CrossEntropyLossFlat, accuracy

def test_class_confusion_and_report_match_sklearn():
    rng = np.random.default_rng(0)
    t, p = rng.integers(0, 11, 200), rng.integers(0, 11, 200)
    test = class_confusion(p, t, 11)
    assert (test == confusion_matrix(t, p, labels=range(11))).all()
    probs = np.eye(11)[p] * 0.9 + 0.01 # probabilities give the same matrix as their argmax
    assert (class_confusion(probs, t, 11) == test).all()
    rep, sk = class_report(p, t), classification_report(t, p, labels=range(11), output_dict=True, zero_division=0)
    for i,row in rep.iterrows():
        assert row.precision == pytest.approx(sk[str(i)]['precision']) and row.recall == pytest.approx(sk[str(i)]['recall'])
        assert row.support == sk[str(i)]['support']
    off = test.copy(); np.fill_diagonal(off, 0)
    assert list(rep.confused_with) == [KIMCHI_SLUGS[j] if off[i].max() else '' for i,j in enumerate(off.argmax(1))]
    with pytest.raises(ValueError, match='out of range'): class_confusion([0, 11], [0, 1], 11)
    with pytest.raises(ValueError, match='2 predictions but 1 targets'): class_confusion([0, 1], [0], 11)

def test_romanized():
    assert romanized('배추김치') == 'baechu-kimchi' and romanized('kkakdugi') == 'kkakdugi' and romanized('cat') == 'cat'

def test_dish_share():
    assert dish_share((0, 0, 100, 100), (100, 100)) == 1.
    assert dish_share((0, 0, 50, 100), (200, 100)) == 0. # left of the centre square 50..150
    assert dish_share((25, 0, 50, 100), (200, 100)) == 0.25

def test_dish_shares_finds_originals_and_boxes(tmp_path):
    (tmp_path/'src'/'배추김치').mkdir(parents=True); (tmp_path/'seen'/'baechu-kimchi').mkdir(parents=True)
    for stem in 'abc':
        Image.new('RGB', (200, 100)).save(tmp_path/'src'/'배추김치'/f'{stem}.JPG')
        Image.new('RGB', (64, 64)).save(tmp_path/'seen'/'baechu-kimchi'/f'{stem}.jpg')
    (tmp_path/'src'/'배추김치'/'crop_area.properties').write_text('a=75,0,50,100\nb=25,0,50,100\nc=oops\n')
    r = dish_shares([tmp_path/'seen'/'baechu-kimchi'/f'{s}.jpg' for s in 'abcd'], tmp_path/'src')
    assert list(r[:2]) == [0.5, 0.25] and np.isnan(r[2:]).all() # c: malformed box; d: no original

def test_confusion_figure_leaves_pyplot_alone():
    import matplotlib, matplotlib.pyplot as plt
    backend, figs = matplotlib.get_backend(), plt.get_fignums()
    fig = confusion_figure([0, 1, 1, 2], [0, 1, 0, 2], ['배추김치', 'b', 'c'], figsize=(3, 3))
    assert matplotlib.get_backend() == backend and plt.get_fignums() == figs
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ['baechu-kimchi', 'b', 'c']
    assert sorted(int(t.get_text()) for t in ax.texts) == [1, 1, 1, 1] # four non-empty cells, one image each

def test_valid_frame(tiny_learner):
    with tiny_learner.no_bar(): preds, targs = tiny_learner.get_preds()
    vf = valid_frame(tiny_learner, preds, targs)
    assert len(vf) == len(tiny_learner.dls.valid_ds) and vf.loss.is_monotonic_decreasing
    assert vf.correct.mean() == pytest.approx(float((preds.argmax(1) == targs).float().mean()))
    assert set(vf.file) == set(tiny_learner.dls.valid_ds.items)

def test_layer_table(tiny_learner):
    head = layer_table(tiny_learner.model[1])
    assert head.detail.iloc[-1] == '512 → 11' and head.params.sum() == sum(p.numel() for p in tiny_learner.model[1].parameters())

def test_epoch_lines(tiny_learner):
    "One header and one line per epoch, no progress bar characters, and the logger is restored"
    t = tiny_learner
    l = Learner(t.dls, copy.deepcopy(t.model), loss_func=CrossEntropyLossFlat(), metrics=accuracy) # don't train the shared learner
    out = []
    with epoch_lines(l, write=out.append): l.fit(2, 1e-4)
    assert len(out) == 3 and out[0].split() == ['epoch', 'train_loss', 'valid_loss', 'accuracy', 'time']
    assert [o.split()[0] for o in out[1:]] == ['0', '1'] and all(len(o.split()) == 5 for o in out[1:])
    assert float(out[2].split()[3]) == pytest.approx(l.recorder.values[-1][2], abs=1e-4)
    assert not any('█' in o for o in out) and l.logger is print

def test_epoch_hits(tiny_learner):
    "One array per epoch over both fits, in validation order, whose mean is the epoch's accuracy; validation batches only"
    t = tiny_learner
    l = Learner(t.dls, copy.deepcopy(t.model), loss_func=CrossEntropyLossFlat(), metrics=accuracy) # don't train the shared learner
    hits = EpochHits()
    with l.no_bar(), l.no_logging():
        l.fit(2, 1e-4, cbs=hits); l.fit(1, 1e-4, cbs=hits)
    assert len(hits.hits) == 3 and all(len(h) == len(t.dls.valid_ds) and h.dtype == bool for h in hits.hits)
    assert hits.hits[-1].mean() == pytest.approx(l.recorder.values[-1][2], abs=1e-6)
    with l.no_bar(): preds, targs = l.get_preds()
    assert (hits.hits[-1] == (preds.argmax(1) == targs).numpy()).all() and len(hits.hits) == 3 # get_preds added nothing: not one of its fits
