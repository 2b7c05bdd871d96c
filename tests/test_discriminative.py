"Chapter 06's helpers: what the optimizer gives each parameter group, read back, on a real (tiny) learner"
import pytest
from kimchi_course.core import course_settings
from kimchi_course.pretraining import course_learner
from kimchi_course.lr import BatchTrace
import numpy as np, pandas as pd, torch
from kimchi_course.lr import snapshot
from kimchi_course.discriminative import opt_lrs, group_lr_table, plot_group_lrs, weight_changes, group_moves, move_ratio, plot_group_moves

@pytest.fixture
def fresh_learner(tiny_learner):
    "A new unfrozen resnet18 learner on the shared tiny data"
    learn = course_learner(tiny_learner.dls, course_settings(arch='resnet18', pretrained=False, seed=0))
    learn.unfreeze()
    return learn

def test_opt_lrs_spaces_a_slice_multiplicatively(fresh_learner):
    assert opt_lrs(fresh_learner, slice(1e-6, 1e-4)) == pytest.approx([1e-6, 1e-5, 1e-4], rel=1e-9)
    assert opt_lrs(fresh_learner, slice(1e-3)) == pytest.approx([1e-4, 1e-4, 1e-3], rel=1e-9)
    assert opt_lrs(fresh_learner) == pytest.approx([1e-4, 1e-4, 1e-3], rel=1e-9)  # reading changes nothing

def test_group_lr_table_reads_lr_max_from_the_optimizer(fresh_learner):
    learn, trace = fresh_learner, BatchTrace()
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(1, lr_max=slice(1e-5, 1e-3), cbs=trace)
    t = group_lr_table(learn, trace)
    assert t.group.tolist() == [0, 1, 2]
    assert t.lr_max.tolist() == pytest.approx([1e-5, 1e-4, 1e-3], rel=1e-12)  # exact, however few mini-batches an epoch has
    assert t.ratio_to_previous.iloc[1:].tolist() == pytest.approx([10, 10], rel=1e-9)
    assert (t.peak_lr <= t.lr_max * (1 + 1e-9)).all()  # the sampled schedule never goes above lr_max
    assert len(plot_group_lrs(trace).axes[0].lines) == 3

def test_group_lr_table_picks_the_fit(fresh_learner):
    learn, trace = fresh_learner, BatchTrace()
    with learn.no_bar(), learn.no_logging():
        learn.fit_one_cycle(1, lr_max=slice(1e-5, 1e-3), cbs=trace); learn.fit_one_cycle(1, lr_max=2e-4, cbs=trace)
    assert group_lr_table(learn, trace).lr_max.tolist() == pytest.approx([2e-4]*3, rel=1e-12)
    first = group_lr_table(learn, trace, fit=0)
    assert first.lr_max.tolist() == pytest.approx([1e-5, 1e-4, 1e-3], rel=1e-12)
    assert (first.peak_lr <= first.lr_max * (1 + 1e-9)).all()  # and its peaks come from the first fit's rows only

def test_weight_changes_follow_the_slice(fresh_learner):
    "A real fit under a slice moves the head's weights (relative) far more than the first group's; a single rate much less so"
    learn = fresh_learner
    start = snapshot(learn)
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(1, lr_max=slice(1e-5, 1e-3))
    moved = weight_changes(start, learn)
    assert sorted(moved.group.unique()) == [0, 1, 2] and len(moved) == len(list(learn.model.parameters()))
    g = group_moves(moved)
    assert (g > 0).all() and g.iloc[2] > g.iloc[0]
    assert move_ratio(moved, moved)[0] == pytest.approx(1.0)  # an arm against itself: no widening
    with pytest.raises(ValueError, match='snapshot'): weight_changes({}, learn)

def test_move_ratio_pairs_tensors():
    fake = lambda dw2: pd.DataFrame(dict(group=[0, 0, 2, 2], name=list('abcd'), w2=[1.]*4, dw2=dw2))
    r, lo, hi = move_ratio(fake([1e-6, 1e-6, 1e-2, 1e-2]), fake([1e-4]*4))
    assert r == pytest.approx(100) and lo <= r <= hi
    with pytest.raises(ValueError, match='same tensors'): move_ratio(fake([1.]*4), fake([1.]*4).iloc[::-1])
    fig = plot_group_moves(pd.DataFrame({'a': [0.1, 0.2], 'b': [0.01, 0.3]}, index=['0', '1']))
    assert len(fig.axes[0].patches) == 4
