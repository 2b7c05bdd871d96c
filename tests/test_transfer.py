"Chapter 05's freezing helpers on a real (tiny) learner, and their bad input"
import pytest
from kimchi_course.core import course_settings
from kimchi_course.pretraining import course_learner
from kimchi_course.transfer import param_groups_table, freeze_strategy, apply_strategy

@pytest.fixture
def fresh_learner(tiny_learner):
    "A new resnet18 learner on the shared tiny data (freezing changes a learner, so not the shared one)"
    return course_learner(tiny_learner.dls, course_settings(arch='resnet18', pretrained=False, seed=0))

def test_freeze_strategy_rejects_unknown_values():
    with pytest.raises(ValueError, match="'small' or 'large'"): freeze_strategy('medium', 'similar')
    with pytest.raises(ValueError, match="'similar' or 'different'"): freeze_strategy('small', 'alike')
    assert freeze_strategy('LARGE', ' different ').quadrant == 1

def test_param_groups_follow_freeze_calls(fresh_learner):
    learn = fresh_learner
    for adv, trains in [(freeze_strategy('small', 'similar'), [False, False, True]),
                        (freeze_strategy('small', 'different'), [False, True, True]),
                        (freeze_strategy('large', 'different'), [True, True, True])]:
        t = param_groups_table(apply_strategy(learn, adv))
        assert (t.trainable > t.trainable_norm).tolist() == trains, adv
        assert t.params.sum() == sum(p.numel() for p in learn.model.parameters())
        assert (t.trainable + t.frozen).tolist() == t.params.tolist()

def test_describe_curve_measures_the_drop():
    from types import SimpleNamespace
    import numpy as np, math
    from kimchi_course.transfer import describe_curve
    flat = SimpleNamespace(lrs=np.logspace(-7, 1, 12), losses=np.array([1., 1.1, 1., 1., 1., 1., 1., 1.02, 1.05, 1.3, 2., 5.]))
    d = describe_curve(flat)
    assert d['drop'] == pytest.approx(0.0, abs=1e-9) and d['noise'] == pytest.approx(0.1)  # no drop: lowest right-half point is the level
    falling = SimpleNamespace(lrs=flat.lrs, losses=np.array([3., 3., 3., 3., 3., 3., 2.8, 2.2, 1.5, 1.2, 2.5, 9.]))
    d = describe_curve(falling)
    assert d['drop'] == pytest.approx(1.8) and d['lowest_at_lr'] == pytest.approx(flat.lrs[9])
    assert d['above_level_again_at_lr'] == pytest.approx(flat.lrs[11])
    with pytest.raises(ValueError, match='too short'): describe_curve(SimpleNamespace(lrs=[1e-7], losses=[1.]))
