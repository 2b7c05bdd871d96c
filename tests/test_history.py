"The training-history helpers on cases the chapter 07 notebook doesn't show: train metrics, repeated fits, bad input"
import numpy as np, pandas as pd, pytest
import fastai.callback.schedule, fastai.callback.progress # fit_one_cycle, lr_find; the progress bar (for `no_bar`)
from fastai.test_utils import synth_learner
from fastai.learner import Recorder
from fastai.metrics import mse
from kimchi_course.lr import HistoryCallback
from kimchi_course.history import history, best_epoch, retrain_epochs, fake_history, loss_gap

def _quiet_fit(learn, *fits):
    with learn.no_bar(), learn.no_logging():
        for n in fits: learn.fit_one_cycle(n, 1e-2)

def test_every_fit_is_kept_in_order():
    learn = synth_learner(n_trn=32, cbs=HistoryCallback(), metrics=mse)
    _quiet_fit(learn, 2, 1, 3)
    h = history(learn)
    assert list(h.fit) == [1, 1, 2, 3, 3, 3]
    assert list(h.epoch) == list(range(6))
    assert list(h.fit_epoch) == [0, 1, 0, 0, 1, 2]
    assert retrain_epochs(h, 3) == [2, 1, 1]
    assert h.mse.notna().all() and (h.seconds > 0).all()

def test_train_metrics_get_their_own_columns():
    learn = synth_learner(n_trn=32, cbs=HistoryCallback(), metrics=mse)
    learn.recorder.train_metrics = True
    _quiet_fit(learn, 2)
    h = history(learn)
    for c in ('train_loss', 'train_mse', 'valid_loss', 'valid_mse'): assert c in h.columns, h.columns
    assert best_epoch(h, 'valid_mse') in (0, 1)
    assert len(loss_gap(h)) == 2

def test_validate_and_lr_find_add_no_rows():
    learn = synth_learner(n_trn=32, cbs=HistoryCallback())
    with learn.no_bar(), learn.no_logging():
        learn.lr_find(num_it=5, show_plot=False)
        learn.validate()
    assert len(history(learn)) == 0

def test_best_epoch_directions_and_bad_input():
    h = fake_history(train_loss=[3., 2, 1], valid_loss=[2., 1.5, 1.6], error_rate=[.5, .4, .4], roc_auc_score=[.6, .7, .65])
    assert best_epoch(h, 'error_rate') == 1            # tie: earliest
    assert best_epoch(h, 'roc_auc_score') == 1         # higher is better
    assert best_epoch(h, 'valid_loss') == 1
    with pytest.raises(ValueError, match='not in the history'): retrain_epochs(h, -1)
    with pytest.raises(ValueError, match='no column'): best_epoch(h, 'accuracy')

def _classifier(n=96, seed=0):
    "A tiny 3-class learner with `HistoryCallback` and `ValidHits`: 64 training and 32 validation points"
    import torch
    from torch import nn
    from fastai.data.core import DataLoaders
    from fastai.learner import Learner
    from fastai.losses import CrossEntropyLossFlat
    from fastai.metrics import accuracy
    from kimchi_course.history import ValidHits
    g = torch.Generator().manual_seed(seed); x = torch.randn(n, 2, generator=g); y = (x[:,0] > 0).long() + (x[:,1] > 0).long()
    ds = list(zip(x, y))
    dls = DataLoaders.from_dsets(ds[:64], ds[64:], bs=16, shuffle=False)
    return Learner(dls, nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 3)), loss_func=CrossEntropyLossFlat(),
                   metrics=accuracy, cbs=[HistoryCallback(), ValidHits()])

def test_valid_hits_follow_every_trained_epoch():
    learn = _classifier()
    with learn.no_bar(), learn.no_logging():
        learn.fit_one_cycle(2, 1e-2); learn.validate(); learn.fit(1, 1e-3)
    hits = np.stack(learn.valid_hits.hits)
    h = history(learn)
    assert hits.shape == (3, 32) and set(np.unique(hits)) <= {0, 1}
    assert np.allclose(hits.mean(1), h.accuracy.values)  # validate() added no row; each row's mean is that epoch's accuracy
    losses = np.stack(learn.valid_hits.losses)
    assert losses.shape == hits.shape and np.allclose(losses.mean(1), h.valid_loss.values.astype(float), atol=1e-5) # and of its losses, the valid loss

def test_valid_hits_skip_an_lr_find_epoch_without_validation():
    "lr_find over more than one epoch of batches trains an epoch whose validation it cancels: no hits row for it"
    learn = _classifier()
    with learn.no_bar(), learn.no_logging(): learn.lr_find(num_it=6, show_plot=False)
    assert learn.valid_hits.hits == []

def _losses(means, n=200, seed=0):
    "Per-image losses (one row per epoch) whose means are `means`, spread like real cross-entropies"
    rng = np.random.default_rng(seed)
    x = np.stack([rng.gamma(2, 1, n) for _ in means])
    return x/x.mean(1, keepdims=True)*np.asarray(means)[:, None]

def _lesson_case():
    from kimchi_course.history import epoch_lesson
    vl = [1.5, 1.0, 1.1, 1.3, 1.4]
    h = fake_history(train_loss=[2., 1., .5, .3, .2], valid_loss=vl, accuracy=[.5, .7, .7, .7, .7])
    good = np.array([[1]*100 + [0]*100, *[[1]*140 + [0]*60]*4])
    return epoch_lesson, h, good, _losses(vl)

def test_epoch_lesson_each_claim_can_fail():
    epoch_lesson, h, good, losses = _lesson_case()
    r = epoch_lesson(h, good, losses, good[2])
    assert (r['turned'], r['holds'], r['within'], r['shown']) == (True, True, True, True)
    assert r['line'].startswith('Lesson check: ') and r['line'].endswith('→ shown') and '200 validation images' in r['line']
    assert r['rose'][1] > 0 # the rise's interval is above zero
    wobble = _losses([1.5, 1.0, 1.0, 1.0, 1.0]); wobble[2:] = wobble[1] * np.random.default_rng(1).normal(1, 0.01, (3, 200))
    small = h.assign(valid_loss=wobble.mean(1))
    assert epoch_lesson(small, good, wobble, good[2])['turned'] is False # a wobble around the lowest loss is not a turn
    falling = _losses([1.5, 1.4, 1.3, 1.2, 1.1]); last_at_min = h.assign(valid_loss=falling.mean(1))
    assert epoch_lesson(last_at_min, good, falling, good[2])['turned'] is False
    assert epoch_lesson(last_at_min, good, falling, good[2])['line'].endswith("→ can't tell")
    assert epoch_lesson(last_at_min, good, falling, good[2])['verdict'] == "can't tell"
    worse = good.copy(); worse[4, :50] = 0
    assert epoch_lesson(h, worse, losses, good[2])['holds'] is False
    assert epoch_lesson(h, worse, losses, good[2])['line'].endswith('→ contradicted') # the accuracy fell beyond its interval
    swapped = good[2].copy(); swapped[130:140] = 0; swapped[140:148] = 1  # 8 other images right, 10 lost: within the noise
    assert epoch_lesson(h, good, losses, swapped)['within'] is True
    assert epoch_lesson(h, good, losses, np.r_[[1]*200])['within'] is False  # retrained far above: outside the spread too
    assert epoch_lesson(h, good, losses, np.r_[[1]*200])['shown'] is True  # the retrain is reported, not judged
    assert '(seed 000; fastbook ch5)' in r['line']
    with pytest.raises(ValueError, match='rows of hits'): epoch_lesson(h, good[:2], losses[:2], good[2])
    with pytest.raises(ValueError, match='rows of hits'): epoch_lesson(h, good, losses[:3], good[2]) # losses must match the hits
