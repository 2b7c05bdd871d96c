"""The full-mode rehearsal (issue 16): chapters run end to end in full mode, offline, on a CPU, on the AI-Hub-like zip
and on the Hugging Face parquet copy (tools/rehearse_full.py). The chapters rehearsed are `CHAPTERS` in that tool:
all of them (the Hugging Face rehearsal leaves out 00_core, 00a and 09, which read no kimchi data).
Also checks the fakes themselves, so that a chapter passing means what it should."""
import sys, zipfile, unicodedata
from pathlib import Path
import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT/'tools'))
import rehearse_full as R

@pytest.fixture(scope='module')
def work(tmp_path_factory)->Path: return tmp_path_factory.mktemp('rehearsal')

def test_aihub_zip_is_like_the_download(work):
    z = R.aihub_zip(work/'kfood.zip', n=2)
    with zipfile.ZipFile(z) as f: infos = f.infolist()
    assert infos and all(not i.flag_bits & 0x800 for i in infos) # names in CP949, no UTF-8 flag
    names = [i.orig_filename.encode('cp437').decode('cp949') for i in infos]
    assert all(n.startswith('kfood/김치/') for n in names)
    from kimchi_course.core import KIMCHI_CLASSES
    assert {n.split('/')[2] for n in names if n.count('/') >= 3} == {unicodedata.normalize('NFC', c.hangul) for c in KIMCHI_CLASSES}
    assert sum(n.endswith('crop_area.properties') for n in names) == 11

def test_weights_and_untar_fakes_load_offline(work, monkeypatch):
    "pretrained=True finds the seeded files under the official names; untar_data finds the fakes without a download"
    import torch, torchvision.models as tvm
    names = R.seed_torch_home(work/'torch')
    for n in ('resnet18-f37072fd.pth', 'resnet34-b627a593.pth', 'resnet50-11ad3fa6.pth', 'efficientnet_v2_s-dd5fe13b.pth'): assert n in names
    monkeypatch.setenv('TORCH_HOME', str(work/'torch'))
    monkeypatch.setattr(torch.hub, 'download_url_to_file', lambda *a, **k: pytest.fail(f'tried to download {a[0]}'))
    m = tvm.resnet18(weights='DEFAULT')
    assert m.fc.weight.shape == (1000, 512)
    fakes = R.seed_fastai_home(work/'fastai')
    monkeypatch.setenv('FASTAI_HOME', str(work/'fastai'))
    from fastai.data import external
    external.fastai_cfg.cache_clear()
    import fastdownload.core
    monkeypatch.setattr(fastdownload.core.FastDownload, 'download', lambda *a, **k: pytest.fail('untar_data tried to download'))
    try:
        assert external.untar_data(external.URLs.PETS) == fakes['PETS'] and (fakes['PETS']/'images'/'pug_1.jpg').exists()
        assert external.untar_data(external.URLs.DOGS) == fakes['DOGS'] and len(list(fakes['DOGS'].rglob('cat.*.jpg'))) == 55
    finally: external.fastai_cfg.cache_clear()

def test_settings_are_known_to_the_course():
    from kimchi_course.core import settings_from_env
    vals = settings_from_env({}, {'KIMCHI_SETTINGS': R.settings_text()}) # raises on a name the course doesn't know
    assert vals['n_per_class'] == 6 and vals['epochs'] == 1 and vals['lr_find_iters'] == 12 and vals['cvd_split'] == (20, 10, 20)

def test_first_error_line():
    out = ("ValueError in /x/nbs/01a.ipynb:\n===\nTraceback (most recent call last):\n  File \"a.py\", line 1\n"
           "    raise ValueError('x')\nValueError: '김치' is not one of the 11 kimchi classes\n\nnbdev Tests Failed")
    assert R.first_error(out) == "ValueError: '김치' is not one of the 11 kimchi classes"

def test_rehearsal(work):
    "Every chapter in `CHAPTERS` passes in full mode, on both sources (two chapters at a time; CI budget: 10 minutes)"
    res = R.rehearse_many(R.CHAPTERS, work, timeout=300, workers=2, verbose=False)
    for source, which in R.CHAPTERS.items():
        assert [r['chapter'] for r in res if r['source'] == source] == R.selected(source, which)
    failed = {f"{r['source']} {r['chapter']}": r['error'] for r in res if not r['ok']}
    assert not failed, f'full-mode rehearsal failed: {failed}'
