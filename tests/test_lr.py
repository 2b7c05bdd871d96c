"The learning rate finder helpers on what chapter 04 doesn't show: files left behind, early divergence, bad input"
import math
from pathlib import Path
import pytest
from fastai.test_utils import synth_learner
from kimchi_course.lr import find_lr, snapshot, changed, log_midpoint, BatchTrace, HistoryCallback, suggestion_table, valid_hits, train_images

def _files(p:Path): return sorted(str(f.relative_to(p)) for f in p.rglob('*'))

def test_find_lr_leaves_no_files_and_restores_weights(tmp_path):
    learn = synth_learner(n_trn=64, path=tmp_path)
    before, files = snapshot(learn), _files(tmp_path)
    r = find_lr(learn, num_it=30, show_bar=False)
    assert changed(before, snapshot(learn)) == []
    assert _files(tmp_path) == files  # no `models/` folder, no checkpoint
    assert r.suggestions._fields == ('minimum', 'steep', 'valley', 'slide')
    assert learn.model_dir == 'models'  # the learner's own setting is back

def test_plain_lr_find_writes_under_learner_path(tmp_path):
    "Why `find_lr` redirects the checkpoint: fastai's `lr_find` creates `models/` under the learner's path"
    learn = synth_learner(n_trn=64, path=tmp_path)
    with learn.no_bar(): learn.lr_find(num_it=10, show_plot=False)
    assert (tmp_path/'models').is_dir()

def test_early_blow_up_gives_nan_not_an_error():
    learn = synth_learner(n_trn=64)
    r = find_lr(learn, num_it=30, start_lr=1e2, end_lr=1e9, show_bar=False)  # diverges almost at once
    assert len(r.lrs) < 30
    assert math.isnan(r.suggestions.slide)
    assert len(r.table) == 4

def test_changed_sees_one_step_and_refuses_other_models():
    learn = synth_learner(n_trn=32)
    before = snapshot(learn)
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-2)
    assert set(changed(before, snapshot(learn))) == {'a', 'b'}
    with pytest.raises(ValueError, match='different models'): changed(before, {'x': before['a']})

def test_traces_keep_every_fit():
    trace, hist = BatchTrace(), HistoryCallback()
    learn = synth_learner(n_trn=2, cbs=[trace, hist])  # 2 training batches per epoch
    with learn.no_bar(), learn.no_logging():
        learn.fit(2, 1e-2); learn.fit(1, 1e-2); learn.validate()
    assert trace.df.fit.tolist() == [1]*4 + [2]*2  # one row per training batch, none for validation
    assert hist.df.fit.tolist() == [1, 1, 2] and hist.df.epoch.tolist() == [0, 1, 2]  # `validate` added no row

def test_log_midpoint():
    assert log_midpoint(1e-3, 1e-2) == pytest.approx(10**-2.5)
    assert log_midpoint(1e-6, 1e-4) == pytest.approx(1e-5)
    with pytest.raises(ValueError, match='positive'): log_midpoint(-1, 1)

def test_trace_reads_each_fits_lr_max_whatever_the_batch_count():
    "The optimizer's per-group `lr_max`, not the sampled peak: exact even with one mini-batch per epoch"
    trace = BatchTrace()
    learn = synth_learner(n_trn=1, cbs=trace)  # one training batch: the schedule's peak is never sampled
    with learn.no_bar(), learn.no_logging():
        learn.fit_one_cycle(1, lr_max=3e-3); learn.fit(1, lr=1e-4)
    assert trace.lr_max == [[pytest.approx(3e-3, rel=1e-12)], [pytest.approx(1e-4, rel=1e-12)]]
    assert trace.df.lr_0.iloc[0] < 3e-3 / 10  # what the one sampled mini-batch got: the start of the cycle

def test_suggestion_table_flags_suggestions_outside_the_test():
    learn = synth_learner(n_trn=64)
    r = find_lr(learn, num_it=30, show_bar=False)
    assert r.table.tested.tolist() == [r.lrs.min() <= v <= r.lrs.max() for v in r.table.lr]
    from collections import namedtuple
    t = suggestion_table(namedtuple('S', ['minimum', 'slide'])(1e-8, math.nan), lrs=[1e-7, 1.])
    assert t.tested.tolist() == [False, False]  # below the first step; NaN

def test_valid_hits_match_the_error_rate():
    from fastai.metrics import error_rate
    from fastai.learner import Learner
    from fastai.data.core import DataLoaders
    import torch
    from torch import nn
    x = torch.randn(40, 2); y = (x[:, 0] > 0).long()
    dls = DataLoaders.from_dsets(list(zip(x[:20], y[:20])), list(zip(x[20:], y[20:])), bs=8)
    learn = Learner(dls, nn.Linear(2, 2), loss_func=nn.CrossEntropyLoss(), metrics=error_rate)
    with learn.no_bar(), learn.no_logging(): learn.fit(3, 0.1); err = learn.validate()[1]
    hits = valid_hits(learn)
    assert hits.shape == (20,) and set(hits.tolist()) <= {0, 1}
    assert 1 - hits.mean() == pytest.approx(float(err), abs=1e-6)

def test_valid_hits_keep_the_training_record():
    "`get_preds` empties fastai's recorder as a fit would; `valid_hits` puts the training's record back (chapter 06 plots it)"
    learn = synth_learner(n_trn=64)
    with learn.no_bar(), learn.no_logging(): learn.fit(2, 1e-2)
    before = [list(getattr(learn.recorder, k)) for k in ('lrs', 'iters', 'losses', 'values')]
    assert before[2] and len(before[3]) == 2
    valid_hits(learn)
    assert [list(getattr(learn.recorder, k)) for k in ('lrs', 'iters', 'losses', 'values')] == before

def test_train_images():
    from kimchi_course.core import course_settings
    assert train_images(course_settings('smoke', env={}, n_per_class=40, valid_pct=0.5)) == 220
    assert train_images(course_settings('full', env={})) == 4400

def test_history_ignores_lr_find_epochs_without_validation():
    "`lr_find` with more steps than an epoch has batches trains whole epochs but cancels their validation: no rows"
    hist = HistoryCallback()
    learn = synth_learner(n_trn=2, cbs=hist)  # 2 batches per epoch; num_it=5 runs 3 epochs
    with learn.no_bar(): learn.lr_find(num_it=5, show_plot=False)
    assert hist.rows == []
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-2)
    assert hist.df.fit.tolist() == [1] and hist.df.valid_loss.notna().all()

def test_reseed_repeats_the_loaders_order():
    learn = synth_learner(n_trn=4)
    order = lambda: learn.dls.train.one_batch()[0].flatten()[:8].tolist()
    from kimchi_course.lr import reseed
    reseed(learn.dls, 3); a = order()
    reseed(learn.dls, 3); assert order() == a
    assert order() != a  # without a reseed the loader shuffles on
