"The learning rate finder helpers on what chapter 04 doesn't show: files left behind, early divergence, bad input"
import math
from pathlib import Path
import pytest
from fastai.test_utils import synth_learner
from kimchi_course.lr import find_lr, snapshot, changed, log_midpoint, BatchTrace, HistoryCallback

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
