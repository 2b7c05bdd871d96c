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
