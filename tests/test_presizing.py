"Presizing quality: the composed (fastai) augmentation beats the step-by-step one on many photos and draws, not just the chapter's figure."
import math, pytest, torch
from kimchi_course.presizing import *

@pytest.fixture(scope='module')
def table():
    # different draws from the chapter's (seed 7, wider zooms, smaller and larger angles), and a 4th square per photo
    draws = random_draws(3, seed=7, max_rotate=45, max_zoom=1.4, max_warp=0.3)
    return quality_table(sample_photos(), draws, presize=320, size=160, crops=2)

def test_composed_wins_everywhere(table):
    assert len(table) == 12
    for b in ('composed', 'composed_2stage'):
        w = wins(table, b)
        assert w.to_dict() == dict(sharpness=1., psnr=1., ssim=1., padded=1.), (b, w)
    assert table.padded_composed.mean() < table.padded_stepwise.mean()
    assert (table.psnr_composed - table.psnr_stepwise).min() > 1  # dB, every case

def test_reference_frames_like_composed(table):
    # the composed map is the reference's map: the same pixels are empty (up to a resampling band)
    assert (table.padded_composed - table.padded_reference).abs().max() < 0.01

def test_small_draw_still_loses_detail():
    # almost no rotation/zoom/warp: nothing is padded, yet three extra resamplings still blur
    sc = compare_pipelines(sample_photos()['flower'], AugDraw(1., 1.0, 0.01, -0.01), 320, 160)['scores']
    assert sc['composed']['sharpness'] > sc['stepwise']['sharpness']
    assert sc['composed']['psnr'] > sc['stepwise']['psnr']

def test_metric_errors():
    x = torch.rand(1, 4, 16, 16)
    with pytest.raises(ValueError, match='same shape'): psnr(x, x[..., :8])
    with pytest.raises(ValueError, match='same shape'): ssim(x, x[:, :, :8])
    with pytest.raises(ValueError, match='coverage channel'): padded_fraction(x[:, :3])
    assert psnr(x, x) == math.inf
    assert abs(ssim(x, x) - 1) < 1e-6
