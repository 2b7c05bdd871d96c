"`kimchi-course predict` and `kimchi-course app` end to end, on a model trained on toy-kimchi: good photos, every bad case, JSON, top-k"
import contextlib, io, json, runpy, sys, os
from pathlib import Path
import numpy as np, pytest, torch
from conftest import run_cli
from kimchi_course.app import *
from kimchi_course.cli import main

@pytest.fixture(scope='module')
def made(tmp_path_factory):
    "A resnet18 trained for one short epoch on a tiny toy-kimchi, saved safely and as a fastai export, and a photo zoo"
    from fastai.vision.all import vision_learner, resnet18
    from kimchi_course.settings import seed_everything
    from kimchi_course.data import kimchi_dls, kimchi_files
    from kimchi_course.toy import make_toy_kimchi
    from kimchi_course.interpret import save_safe
    root = tmp_path_factory.mktemp('predict')
    toy = make_toy_kimchi(root/'toy', n_per_class=3, seed=5)
    seed_everything(0)
    learn = vision_learner(kimchi_dls(toy, size=32, presize=40, bs=8, seed=0, workers=0), resnet18, pretrained=False)
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-3)
    safe = save_safe(learn, root/'kimchi.pt', meta=dict(data='toy-kimchi (synthetic)'))
    learn.export(root/'kimchi.pkl')
    zoo = photo_zoo(kimchi_files(toy)[0], root/'photos')
    (root/'empty').mkdir()
    (root/'not-a-model.pt').write_text('hello')
    torch.save(learn.model.state_dict(), root/'state_dict.pt')
    return root, safe, zoo

GOOD = ['upright.png', 'bitmap.bmp', 'lossless.webp', 'rotated-exif.png', 'opaque-rgba.png', 'rotated-exif.jpg',
        'grayscale.jpg', 'cmyk.jpg', 'palette.gif', 'photo.webp']
BAD = ['empty.png', 'notes.jpg', 'truncated.jpg']

def run_main(*args):
    "`kimchi-course` in-process: (exit status, stdout, stderr)"
    o,e = io.StringIO(),io.StringIO()
    with contextlib.redirect_stdout(o), contextlib.redirect_stderr(e):
        try: rc = main([str(a) for a in args])
        except SystemExit as x: rc = x.code
    return rc, o.getvalue(), e.getvalue()

def test_every_format_reads(made):
    root, safe, zoo = made
    m = load_model(safe, device='cpu')
    ims = [open_photo(zoo[n], m.presize) for n in GOOD]
    assert all(im.mode == 'RGB' and im.size == ims[0].size for im in ims)
    assert ims[0].width > ims[0].height # landscape: a photo turned the wrong way would show in the shape
    for i in range(1, 5): assert np.array_equal(np.asarray(ims[i]), np.asarray(ims[0])), GOOD[i] # lossless, EXIF-rotated, RGBA
    p = m.probs(ims)
    assert p.shape == (len(GOOD), 11) and torch.allclose(p.sum(1), torch.ones(len(GOOD)), atol=1e-5)
    for n in BAD:
        with pytest.raises(Exception): open_photo(zoo[n])

def test_folder_with_good_and_bad_files_end_to_end(made):
    "The installed command: a folder of good and broken photos, plus a missing file and an empty folder"
    root, safe, zoo = made
    r = run_cli('predict', safe, root/'photos', root/'empty', root/'gone.jpg', '--top-k', '2', '--bs', '4')
    assert r.returncode == 0, r.stderr
    assert 'Traceback' not in r.stderr
    out = r.stdout.splitlines()
    assert sorted(Path(l.split(': ')[0]).name for l in out) == sorted(GOOD)
    assert all(l.count('%') == 2 and '(' in l for l in out) # two classes per line, with Hangul
    err = r.stderr.splitlines()
    for name in BAD + ["empty", "gone.jpg"]: assert sum(f"/{name}: " in l for l in err) == 1, (name, err)
    assert 'predicted 10 photos, skipped 5' in r.stderr

def test_json_lines(made):
    root, safe, zoo = made
    rc, out, err = run_main('predict', safe, zoo['cmyk.jpg'], zoo['palette.gif'], '--json', '--top-k', '11')
    assert rc == 0 and err == '', err
    rows = [json.loads(l) for l in out.splitlines()]
    assert [Path(o['file']).name for o in rows] == ['cmyk.jpg', 'palette.gif']
    for o in rows:
        assert len(o['top']) == 11 and set(o['top'][0]) == {'slug', 'hangul', 'prob'}
        assert abs(sum(t['prob'] for t in o['top']) - 1) < 2e-3
        assert [t['prob'] for t in o['top']] == sorted((t['prob'] for t in o['top']), reverse=True)

def test_nothing_predictable_end_to_end(made):
    root, safe, zoo = made
    r = run_cli('predict', safe, zoo['notes.jpg'], zoo['empty.png'], root/'empty')
    assert r.returncode == 1 and r.stdout == '' and 'Traceback' not in r.stderr
    assert len(r.stderr.splitlines()) == 4 and 'no photo could be predicted' in r.stderr

@pytest.mark.parametrize('model, msg', [
    ('missing.pt', 'no such model file'),
    ('not-a-model.pt', 'not a kimchi-course safe model'),
    ('state_dict.pt', 'not a kimchi-course safe model'),
    ('kimchi.pkl', '--trust-pickle'),
    ('photos', 'a folder, not a model file'),
])
def test_bad_model_one_line(made, model, msg):
    root, safe, zoo = made
    rc, out, err = run_main('predict', root/model, zoo['upright.png'])
    assert rc == 1 and out == '' and msg in err, err
    assert len(err.strip().splitlines()) == 1 and model in err

def test_trust_pickle(made):
    root, safe, zoo = made
    rc, out, err = run_main('predict', root/'kimchi.pkl', zoo['upright.png'], '--trust-pickle', '--json')
    assert rc == 0 and 'only do that with files you trust' in err
    rc2, out2, _ = run_main('predict', safe, zoo['upright.png'], '--json')
    a,b = json.loads(out)['top'], json.loads(out2)['top']
    assert [t['slug'] for t in a] == [t['slug'] for t in b]
    assert all(abs(x['prob'] - y['prob']) < 1e-3 for x,y in zip(a, b))

@pytest.mark.parametrize('k, rc, msg', [('0', 2, 'must be at least 1'), ('12', 1, 'out of range'), ('x', 2, 'whole number')])
def test_top_k_bounds(made, k, rc, msg):
    root, safe, zoo = made
    got, out, err = run_main('predict', safe, zoo['upright.png'], '--top-k', k)
    assert got == rc and msg in err and out == ''

def test_top_k_one(made):
    root, safe, zoo = made
    rc, out, err = run_main('predict', safe, zoo['upright.png'], '--top-k', '1')
    assert rc == 0 and out.count('%') == 1

def test_batching_changes_nothing(made):
    root, safe, zoo = made
    m = load_model(safe, device='cpu')
    files = [zoo[n] for n in GOOD + BAD]
    a, pa = predict_files(m, files, k=3, bs=1)
    b, pb = predict_files(m, files, k=3, bs=64)
    assert [o['file'] for o in a] == [o['file'] for o in b] == [str(zoo[n]) for n in GOOD]
    assert pa == pb and [Path(f).name for f,_ in pa] == BAD
    for x,y in zip(a, b): assert [t['slug'] for t in x['top']] == [t['slug'] for t in y['top']]

def test_expand_images(made, tmp_path):
    root, safe, zoo = made
    (tmp_path/'a'/'b').mkdir(parents=True); (tmp_path/'a'/'b'/'x.JPG').write_bytes(zoo['upright.png'].read_bytes())
    (tmp_path/'a'/'.DS_Store').write_bytes(b'junk'); (tmp_path/'a'/'readme.md').write_text('hi')
    files, problems = expand_images([tmp_path/'a', tmp_path/'nope'])
    assert [f.name for f in files] == ['x.JPG'] and problems == [(str(tmp_path/'nope'), 'no such file or folder')]

def test_predict_help_explains_the_risk():
    rc, out, err = run_main('predict', '--help')
    assert rc == 0 and '--trust-pickle' in out and 'runs whatever code' in ' '.join(out.split())

def test_app_built_not_launched(made):
    gr = pytest.importorskip('gradio')
    root, safe, zoo = made
    demo = build_app(safe, examples=[str(zoo['upright.png'])])
    assert isinstance(demo, gr.Interface) and len(demo.examples) == 1
    assert demo.input_components[0].image_mode is None # the uploaded file reaches open_photo unconverted (EXIF, RGBA, CMYK)
    lp = label_probs(load_model(safe, device='cpu'), zoo['rotated-exif.jpg'])
    assert len(lp) == 3 and all('(' in k for k in lp) and list(lp.values()) == sorted(lp.values(), reverse=True)
    with pytest.raises(ValueError, match='not image data'): label_probs(load_model(safe), zoo['notes.jpg'])

def test_space_folder(made, tmp_path):
    gr = pytest.importorskip('gradio')
    root, safe, zoo = made
    space = write_space(safe, tmp_path/'space', examples=[zoo['upright.png'], zoo['cmyk.jpg']])
    assert {p.name for p in space.iterdir()} >= {'app.py', 'requirements.txt', 'README.md', 'model.pt', 'examples'}
    assert 'kimchi-course[app]' in (space/'requirements.txt').read_text()
    assert 'sdk: gradio' in (space/'README.md').read_text()
    cwd = os.getcwd(); os.chdir(space)
    try: demo = runpy.run_path('app.py', run_name='space')['demo']
    finally: os.chdir(cwd)
    assert isinstance(demo, gr.Interface) and len(demo.examples) == 2
    with pytest.raises(ValueError, match='safe file'): write_space(root/'kimchi.pkl', tmp_path/'s2')
    (tmp_path/'mine').mkdir(); (tmp_path/'mine'/'notes.txt').write_text('mine')
    with pytest.raises(FileExistsError): write_space(safe, tmp_path/'mine')
    assert [p.name for p in (tmp_path/'mine').iterdir()] == ['notes.txt']

def test_app_without_gradio_one_line(made, monkeypatch):
    root, safe, zoo = made
    monkeypatch.setitem(sys.modules, 'gradio', None) # `import gradio` now raises ImportError
    rc, out, err = run_main('app', safe)
    assert rc == 1 and "pip install 'kimchi-course[app]'" in err and len(err.strip().splitlines()) == 1

def test_app_bad_model_one_line(made):
    root, safe, zoo = made
    rc, out, err = run_main('app', root/'kimchi.pkl')
    assert rc == 1 and 'fastai export' in err and len(err.strip().splitlines()) == 1
