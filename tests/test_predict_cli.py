"""`kimchi-course predict` and the app's pieces (chapter 11), in-process through `run_main`, on the session's tiny
model: every photo format, every bad input, the exit statuses (0 all predicted, 1 some skipped, 2 bad usage or a
model that can't be loaded), JSON lines, and a `predict` that never imports fastai. Chapter 11 checks what is not
repeated here: batch sizes change nothing, lossless copies of a photo predict the same, `format_prediction`'s line."""
import json, subprocess, sys
from pathlib import Path
import pytest, torch
from conftest import run_main, run_cli
from kimchi_course.app import *
from kimchi_course.model_file import save_model, load_model

GOOD = ['upright.png', 'bitmap.bmp', 'lossless.webp', 'rotated-exif.png', 'opaque-rgba.png', 'rotated-exif.jpg',
        'grayscale.jpg', 'cmyk.jpg', 'palette.gif', 'photo.webp']
BAD = ['bomb.png', 'empty.png', 'notes.jpg', 'truncated.jpg'] # the zoo's README.txt has no image extension: a folder skips it

@pytest.fixture(scope='module')
def made(tiny_learner, toy_kimchi, tmp_path_factory):
    "The tiny learner as a model file and as a fastai pickle, files that aren't models, and the photo zoo"
    root = tmp_path_factory.mktemp('predict')
    model = save_model(tiny_learner, root/'model.pt', meta=dict(data='toy-kimchi (tests)'))
    tiny_learner.export(root/'kimchi.pkl')
    (root/'not-a-model.pt').write_text('hello')
    torch.save(tiny_learner.model.state_dict(), root/'state_dict.pt')
    (root/'empty').mkdir()
    zoo = photo_zoo(sorted((toy_kimchi/'kkakdugi').glob('*.jpg'))[0], root/'photos')
    return root, model, zoo

def lines(s:str)->list: return s.strip().splitlines() if s.strip() else []

def test_folder_with_good_and_bad_files(made):
    "A folder of good and broken photos, a missing file and an empty folder: the good ones printed, one line per skip, exit 1"
    root, model, zoo = made
    rc, out, err = run_main('predict', model, root/'photos', root/'empty', root/'gone.jpg', '--top-k', '2', '--bs', '4')
    assert rc == 1 and 'Traceback' not in err
    assert sorted(Path(l.split(': ')[0]).name for l in lines(out)) == sorted(GOOD)
    assert all(l.count('%') == 2 and '(' in l for l in lines(out)) # two classes per line, with Hangul
    for name in BAD + ['empty', 'gone.jpg']: assert sum(f"/{name}: " in l for l in lines(err)) == 1, (name, err)
    assert lines(err)[-1] == f'kimchi-course predict: predicted {len(GOOD)} photos, skipped {len(BAD) + 2}'

def test_every_input_predicted_exit_0(made):
    root, model, zoo = made
    rc, out, err = run_main('predict', model, *[zoo[n] for n in GOOD])
    assert (rc, err) == (0, '') and len(lines(out)) == len(GOOD)

def test_json_lines_with_errors(made):
    root, model, zoo = made
    rc, out, err = run_main('predict', model, zoo['cmyk.jpg'], zoo['notes.jpg'], root/'gone.jpg', zoo['palette.gif'], '--json', '--top-k', '11')
    assert rc == 1 and lines(err) == ['kimchi-course predict: predicted 2 photos, skipped 2']
    rows = [json.loads(l) for l in lines(out)]
    assert [Path(o['file']).name for o in rows] == ['gone.jpg', 'cmyk.jpg', 'notes.jpg', 'palette.gif'] # path problems first, then in order
    assert [sorted(o) for o in rows] == [['error', 'file'], ['file', 'top'], ['error', 'file'], ['file', 'top']]
    assert rows[0]['error'] == 'no such file or folder' and 'not an image' in rows[2]['error']
    for o in (rows[1], rows[3]):
        assert len(o['top']) == 11 and set(o['top'][0]) == {'slug', 'hangul', 'prob'}
        assert abs(sum(t['prob'] for t in o['top']) - 1) < 2e-3
        assert [t['prob'] for t in o['top']] == sorted((t['prob'] for t in o['top']), reverse=True)

def test_nothing_predictable_exit_1(made):
    root, model, zoo = made
    rc, out, err = run_main('predict', model, zoo['notes.jpg'], zoo['empty.png'], root/'empty')
    assert rc == 1 and out == '' and 'Traceback' not in err
    assert len(lines(err)) == 4 and lines(err)[-1] == 'kimchi-course predict: no photo could be predicted (3 skipped)'

@pytest.mark.parametrize('name, msg', [
    ('missing.pt', 'no such model file'),
    ('not-a-model.pt', 'not a kimchi-course model file'),
    ('state_dict.pt', 'not a kimchi-course model file'),
    ('kimchi.pkl', 'pickled Python objects'),
    ('photos', 'a folder, not a model file'),
])
def test_model_that_cannot_be_loaded_exit_2(made, name, msg):
    root, model, zoo = made
    rc, out, err = run_main('predict', root/name, zoo['upright.png'])
    assert rc == 2 and out == '' and msg in err, err
    assert len(lines(err)) == 1 and str(root/name) in err and 'Traceback' not in err

@pytest.mark.parametrize('args, msg', [(['--top-k', '0'], 'must be at least 1'), (['--top-k', '12'], 'out of range'),
                                       (['--top-k', 'x'], 'whole number'), (['--bs', '-1'], 'must be at least 1'), (['--nope'], 'unrecognized')])
def test_bad_usage_exit_2(made, args, msg):
    root, model, zoo = made
    rc, out, err = run_main('predict', model, zoo['upright.png'], *args)
    assert rc == 2 and msg in err and out == '' and len(lines(err)) == 1, err

def test_no_photo_given_exit_2(made):
    rc, out, err = run_main('predict', made[1])
    assert rc == 2 and 'IMAGE' in err and out == ''

def test_top_k_one(made):
    root, model, zoo = made
    rc, out, err = run_main('predict', model, zoo['upright.png'], '--top-k', '1')
    assert rc == 0 and out.count('%') == 1

def test_help_documents_the_exit_codes():
    rc, out, err = run_main('predict', '--help')
    text = ' '.join(out.split())
    assert rc == 0 and 'exit status:' in out
    for code, meaning in EXIT_STATUS.items(): assert f'{code} {meaning}' in text, (code, text[-400:])

def test_console_script_exit_status(made):
    "The installed command itself passes the exit status on (1: some inputs skipped)"
    root, model, zoo = made
    r = run_cli('predict', model, zoo['upright.png'], zoo['notes.jpg'])
    assert r.returncode == 1 and len(lines(r.stdout)) == 1 and 'skipped' in r.stderr and 'Traceback' not in r.stderr

def test_predict_never_imports_fastai(made):
    """The project's one run-time check that predicting needs no fastai: `kimchi-course predict` (`main`, as the console script
    calls it) on a model file in a fresh interpreter predicts through chapter 11's module and imports neither fastai nor
    torchvision, Gradio or matplotlib. (tests/test_structure.py checks the fastai-free modules' source without running them.)"""
    root, model, zoo = made
    code = ("import sys; from kimchi_course.cli import main; rc = main(sys.argv[1:]); "
            "print(rc, 'kimchi_course.app' in sys.modules, sorted({m.split('.')[0] for m in sys.modules} & {'fastai', 'torchvision', 'gradio', 'matplotlib'}))")
    r = subprocess.run([sys.executable, '-c', code, 'predict', str(model), str(zoo['upright.png'])], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip().splitlines()[-1] == '0 True []', r.stdout[-500:] + r.stderr[-2000:]

def test_expand_images(made, tmp_path):
    root, model, zoo = made
    (tmp_path/'a'/'b').mkdir(parents=True); (tmp_path/'a'/'b'/'x.JPG').write_bytes(zoo['upright.png'].read_bytes())
    (tmp_path/'a'/'.DS_Store').write_bytes(b'junk'); (tmp_path/'a'/'readme.md').write_text('hi')
    (tmp_path/'a'/'__MACOSX').mkdir(); (tmp_path/'a'/'__MACOSX'/'._x.jpg').write_bytes(b'\0\5\26\7')
    (tmp_path/'c').mkdir()
    files, problems = expand_images([tmp_path/'a', tmp_path/'nope', tmp_path/'c'])
    assert [f.name for f in files] == ['x.JPG']
    assert [(Path(p).name, why.split(' (')[0]) for p,why in problems] == [('nope', 'no such file or folder'), ('c', 'folder holds no image files')]

def test_top_k():
    p = torch.tensor([[0.1, 0.7, 0.2]])
    assert [t['slug'] for t in top_k(p, ['kkakdugi', 'baechu-kimchi', 'x'], 2)[0]] == ['baechu-kimchi', 'x']
    assert top_k(p, ['kkakdugi', 'baechu-kimchi', 'x'], 1)[0][0] == dict(slug='baechu-kimchi', hangul='배추김치', prob=0.7)
    with pytest.raises(ValueError, match='between 1 and 3'): top_k(p, ['a', 'b', 'c'], 4)

def test_app_built_not_launched(made):
    import gradio as gr # the [app] extra, part of [dev]
    root, model, zoo = made
    demo = build_app(model, examples=[str(zoo['upright.png'])])
    fn = next(f for f in demo.fns.values() if f.api_name == 'predict')
    assert isinstance(demo, gr.Blocks) and fn.preprocess is False # the upload reaches model.open unopened (bombs, non-images)
    lp = fn.fn(dict(path=str(zoo['rotated-exif.jpg']), orig_name='my photo.jpg'))
    assert len(lp) == 3 and all('(' in k for k in lp) and list(lp.values()) == sorted(lp.values(), reverse=True)
    assert lp == label_probs(load_model(model), zoo['rotated-exif.jpg'])
    for name, msg in [('notes.jpg', "can't use lunch.jpg: not an image file"), ('bomb.png', 'decompression bomb')]:
        with pytest.raises(gr.Error, match=msg): fn.fn(dict(path=str(zoo[name]), orig_name='lunch.jpg'))
    with pytest.raises(gr.Error, match='Upload a photo'): fn.fn(None)

def test_toy_examples_one_per_class():
    ex = toy_examples(n=3)
    assert len(ex) == 3 and len({Path(e).parent.name for e in ex}) == 3 and all(Path(e).is_file() for e in ex)

def test_app_without_gradio_one_line(made, monkeypatch):
    monkeypatch.setitem(sys.modules, 'gradio', None) # `import gradio` now raises ImportError
    rc, out, err = run_main('app', made[1])
    assert rc == 2 and "pip install 'kimchi-course[app]'" in err and len(lines(err)) == 1

def test_app_bad_model_one_line(made):
    root, model, zoo = made
    rc, out, err = run_main('app', root/'kimchi.pkl')
    assert rc == 2 and 'pickled Python objects' in err and len(lines(err)) == 1

def test_app_help_shows_host_and_port():
    rc, out, err = run_main('app', '--help')
    assert rc == 0 and all(o in out for o in ('--host', '--port', '--max-file-size', '127.0.0.1'))
