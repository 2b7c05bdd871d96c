"The benchmark helpers on cases chapter 08 doesn't reach: the fallback memory gauge, budgets, the caller's state, bad input"
import pytest, torch
from torch import nn
from kimchi_course import bench
from kimchi_course.core import course_settings
from kimchi_course.bench import peak_memory, largest_batch, batch_fits, set_precision, activation_mb

def test_peak_memory_without_proc_falls_back_to_lifetime_peak(monkeypatch):
    monkeypatch.setattr(bench, '_reset_peak_rss', lambda: False)
    with peak_memory() as m: x = torch.ones(1, 2**20)
    assert m.kind == 'lifetime peak RSS growth' and m.mb >= 0

def test_peak_memory_reads_the_gauge():
    "The gauge's kind is named and its reading is a number; its value moves between runs, so it isn't bracketed"
    with peak_memory() as m: x = torch.ones(32, 2**20); x += 1   # 128 MB
    assert m.kind == 'peak RSS growth' and m.mb > 0, m

def test_largest_batch_is_monotone_search():
    for cap in (1, 2, 3, 7, 64, 100, 1000):
        assert largest_batch(lambda bs: bs <= cap, start=1, limit=1024) == cap
    assert largest_batch(lambda bs: True, limit=1000) == 512

def test_budget_decides_the_batch_size(monkeypatch):
    "`batch_fits` compares each step's measured memory with the budget: a budget just below a step's memory rules that batch out"
    monkeypatch.setattr(bench, 'step_memory', lambda model, bs, size, precision: 3.0*bs)  # 3 MB per image, exactly
    m = nn.Linear(2, 2)
    assert largest_batch(batch_fits(m, 8, budget_mb=99.0), limit=64) == 33    # 33 images take 99 MB: fits
    assert largest_batch(batch_fits(m, 8, budget_mb=98.9), limit=64) == 32    # 0.1 MB less: 33 no longer fits
    with pytest.raises(ValueError, match='does not fit'): largest_batch(batch_fits(m, 8, budget_mb=5.9))

def test_budget_between_two_counted_steps():
    "Counted activations: a budget halfway between the memory of 8 and of 32 images lands on 20 exactly, on any machine"
    m = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1), nn.Flatten(1), nn.LazyLinear(2))
    m(torch.zeros(1, 3, 64, 64))  # materialise the lazy layer
    m8, m32 = activation_mb(m, 8, size=64), activation_mb(m, 32, size=64)
    assert abs(m32 - 4*m8) < 1e-9, (m8, m32)  # exactly in proportion to the batch size
    assert largest_batch(batch_fits(m, 64, budget_mb=(m8+m32)/2, measure=activation_mb), limit=64) == 20

@pytest.fixture
def cudnn_benchmark_on():
    "cuDNN's benchmark flag switched on (as a caller might), restored afterwards"
    old = torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = True, False
    yield
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = old

def test_bench_leaves_the_callers_state_alone(tiny_learner, cudnn_benchmark_on):
    dls = tiny_learner.dls
    rngs = [dl.rng.getstate() for dl in dls.loaders]
    row = bench.bench(dls, course_settings(pretrained=False, seed=0), 'resnet18', steps=1, warmup=0)
    assert [dl.rng.getstate() for dl in dls.loaders] == rngs  # the caller's shuffling is as it was
    assert (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic) == (True, False)  # flags not changed ...
    assert (row['cudnn_benchmark'], row['cudnn_deterministic']) == (True, False)  # ... and reported as they were
    assert row['timed'] == 1 and row['arch'] == 'resnet18'

def test_bad_names():
    with pytest.raises(ValueError, match='bf16'): set_precision(None, 'half')
    with pytest.raises(ValueError, match='budget_mb'): batch_fits(nn.Linear(2, 2))

def _toy_dls(toy_kimchi, bs):
    from kimchi_course.dataloaders import kimchi_dls
    return kimchi_dls(toy_kimchi, size=32, presize=40, bs=bs, seed=0, workers=0)

def test_bench_on_too_little_data_says_so_in_one_line(toy_kimchi):
    "Fewer training images than one batch: nothing to time, one line saying why, and the row still comes back"
    dls, said = _toy_dls(toy_kimchi, 64), []
    assert len(dls.train) == 0
    row = bench.bench(dls, course_settings('smoke', env={}, pretrained=False, seed=0), 'resnet18', steps=3, warmup=1, say=said.append)
    assert len(said) == 1 and 'nothing to time' in said[0] and 'batch of 64' in said[0], said
    assert row['timed'] == 0 and row['s_per_batch'] != row['s_per_batch']  # NaN

def test_bench_times_what_a_short_epoch_gives(toy_kimchi):
    "One epoch of 2 batches with 3 warm-up batches asked for: the warm-up shrinks so one batch is timed, and it says so"
    dls, said = _toy_dls(toy_kimchi, 16), []
    assert len(dls.train) == 2
    s = course_settings('smoke', env={}, pretrained=False, seed=0)
    row = bench.bench(dls, s, 'resnet18', steps=5, warmup=3, epochs=1, say=said.append)
    assert row['timed'] == 1 and row['s_per_batch'] > 0 and row['accuracy'] == row['accuracy']
    assert len(said) == 1 and 'times 1 batch(es) after 1 warm-up instead of 5 after 3' in said[0], said
    lines = []
    t = bench.bench_table(dls, s, ('resnet18',), ('fp32', 'fp16'), say=lines.append, steps=5, warmup=3, epochs=1)
    assert len(t) == 2 and len(lines) == 1  # the same line from both rows, said once
    if not torch.cuda.is_available(): assert t.first_loss.nunique() == 1  # on a CPU, fp16 computed exactly what fp32 did

def test_precise_bench_measures_twice_and_leaves_the_callers_shuffling(tiny_learner):
    "`precise=True` keeps the running statistics' accuracy beside the one after `precise_bn`, and iterates the training data without moving the caller's generators"
    dls = tiny_learner.dls
    rngs = [dl.rng.getstate() for dl in dls.loaders]
    s = course_settings(pretrained=False, seed=0)
    row = bench.bench(dls, s, 'resnet18', epochs=1, precise=True)
    assert [dl.rng.getstate() for dl in dls.loaders] == rngs
    assert 0 <= row['ema_accuracy'] <= 1 and 1 <= row['ema_classes'] <= len(dls.vocab) and 0 <= row['accuracy'] <= 1
    assert 'ema_accuracy' not in bench.bench(dls, s, 'resnet18', epochs=1)   # off by default: one measurement, fastai's way
