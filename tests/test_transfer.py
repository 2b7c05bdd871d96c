"Chapter 05's freezing helpers on a real (tiny) learner, and their bad input"
import pytest
from kimchi_course.core import course_learner, course_settings
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
