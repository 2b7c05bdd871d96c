"The benchmark helpers on cases the chapter 08 notebook doesn't reach: the fallback memory gauge, bad input"
import pytest, torch
import kimchi_course.settings
from kimchi_course import bench
from kimchi_course.bench import peak_memory, largest_batch, batch_fits, get_arch, set_precision, step_memory

def test_peak_memory_without_proc_falls_back_to_lifetime_peak(monkeypatch):
    monkeypatch.setattr(bench, '_reset_peak_rss', lambda: False)
    with peak_memory() as m: x = torch.ones(1, 2**20)
    assert m.kind == 'lifetime peak RSS growth' and m.mb >= 0

def test_peak_memory_sees_a_big_allocation():
    with peak_memory() as m: x = torch.ones(32, 2**20); x += 1   # 128 MB
    assert m.kind == 'peak RSS growth' and 100 < m.mb < 200, m

def test_largest_batch_is_monotone_search():
    for cap in (1, 2, 3, 7, 64, 100, 1000):
        assert largest_batch(lambda bs: bs <= cap, start=1, limit=1024) == cap
    assert largest_batch(lambda bs: True, limit=1000) == 512

def test_budget_on_a_small_model():
    m = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3*8*8, 4))
    assert step_memory(m, 4, size=8) >= 0
    assert largest_batch(batch_fits(m, 8, budget_mb=1e6), limit=32) == 32

def test_bad_names():
    with pytest.raises(ValueError, match='efficientnet_v2_s'): get_arch('vgg16')
    with pytest.raises(ValueError, match='bf16'): set_precision(None, 'half')
