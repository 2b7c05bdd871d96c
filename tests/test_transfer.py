"LR finder and transfer helpers: what the notebooks hold badly (files left behind, early divergence, the two-notebook module)"
import math, re
from pathlib import Path
import numpy as np, pytest, torch
from kimchi_course.settings import *
from kimchi_course import lr as klr, transfer
from kimchi_course.lr import find_lr, snapshot, changed, log_midpoint
from kimchi_course.transfer import param_groups_table, freeze_strategy, apply_strategy
from fastai.test_utils import synth_learner
from fastai.vision.all import DataBlock, ImageBlock, CategoryBlock, get_image_files, parent_label, Resize, vision_learner, resnet18
from PIL import Image

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

def test_log_midpoint():
    assert log_midpoint(1e-3, 1e-2) == pytest.approx(10**-2.5)
    assert log_midpoint(1e-6, 1e-4) == pytest.approx(1e-5)
    with pytest.raises(ValueError, match='positive'): log_midpoint(-1, 1)

def test_freeze_strategy_rejects_unknown_values():
    with pytest.raises(ValueError, match="'small' or 'large'"): freeze_strategy('medium', 'similar')
    assert freeze_strategy('LARGE', ' different ').quadrant == 1

@pytest.fixture(scope='module')
def tiny_learner(tmp_path_factory):
    root = tmp_path_factory.mktemp('tiny')
    rng = np.random.default_rng(0)
    for c in ('a', 'b'):
        (root/c).mkdir()
        for i in range(4): Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(root/c/f'{i}.jpg')
    dls = DataBlock((ImageBlock, CategoryBlock), get_items=get_image_files, get_y=parent_label,
                    item_tfms=Resize(32)).dataloaders(root, bs=4, num_workers=0)
    return vision_learner(dls, resnet18, pretrained=False)

def test_param_groups_follow_freeze_calls(tiny_learner):
    learn = tiny_learner
    for adv, trains in [(freeze_strategy('small', 'similar'), [False, False, True]),
                        (freeze_strategy('small', 'different'), [False, True, True]),
                        (freeze_strategy('large', 'different'), [True, True, True])]:
        t = param_groups_table(apply_strategy(learn, adv))
        assert ((t.trainable > t.trainable_norm).tolist()) == trains
        assert t.params.sum() == sum(p.numel() for p in learn.model.parameters())

def test_transfer_module_holds_both_notebooks_once():
    "05 writes transfer.py and 06 appends to it (`#| export transfer`): every name once, in one `__all__`"
    src = Path(transfer.__file__).read_text()
    assert len(transfer.__all__) == len(set(transfer.__all__))
    for name in ('param_groups_table', 'freeze_strategy', 'group_lr_table', 'plot_group_lrs'):
        assert name in transfer.__all__
        assert len(re.findall(rf'^def {name}\(', src, flags=re.M)) == 1
    assert '../nbs/05_unfreezing.ipynb' in src and '../nbs/06_discriminative_lrs.ipynb' in src
