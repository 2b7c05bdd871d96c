"""`kimchi-course train` (chapter 13) on every kind of data the course reads: toy-kimchi, an AI-Hub-like zip (Hangul
names in CP949, macOS clutter), the Hugging Face parquet layout and a folder of classes that aren't kimchi; one-line
errors for bad data and bad arguments. The toy-kimchi run also checks what the demo's output looks like (the demo is
`train` on toy-kimchi: chapter 12b runs it and checks its accuracy). Two processes under `torchrun` are chapter 12a's
run (its report: disjoint shards, the whole validation set counted once, model.pt's accuracy), not repeated here."""
import json, shutil
from pathlib import Path
import pytest
from conftest import run_main, zip_folder

TINY = ('--epochs', '1', '--size', '32', '--presize', '40', '--bs', '8', '--no-pretrained') # quick: random weights, 32 px

def _train(data, out, *args)->tuple:
    "`kimchi-course train DATA --out OUT` with the tiny settings, in-process; (exit status, stdout, stderr, report.json)"
    rc, o, e = run_main('train', data, '--out', out, *TINY, *args)
    assert rc == 0, e[-3000:]
    return rc, o, e, json.loads((Path(out)/'report.json').read_text())

def _predicts(out:Path, stdout:str)->str:
    "Run the `predict` command `train` printed, as a user would paste it; its output"
    cmd = next(l.strip() for l in stdout.splitlines() if l.strip().startswith('kimchi-course predict '))
    assert cmd.startswith(f'kimchi-course predict {out}/model.pt ')
    rc, o, e = run_main(*cmd.split()[1:])
    assert rc == 0 and o.count('%') == 3, e
    return o

def test_train_toy_kimchi(toy_kimchi, tmp_path):
    "Also what the demo (`train` on toy-kimchi) writes and prints: a PNG, the next commands in the report, one line per epoch off a terminal"
    import matplotlib
    backend, out = matplotlib.get_backend(), tmp_path/'model'
    rc, o, e, rep = _train(toy_kimchi, out)
    assert {p.name for p in out.iterdir()} == {'model.pt', 'confusion_matrix.png', 'report.md', 'report.json'}
    assert (out/'confusion_matrix.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n' and matplotlib.get_backend() == backend
    assert rep['n_valid'] == rep['valid_size'] and rep['n_train'] + rep['valid_size'] == 44 and rep['world_size'] == 1
    assert len(rep['classes']) == 11 and rep['metrics']['accuracy'] == pytest.approx(1 - rep['metrics']['error_rate'])
    md = (out/'report.md').read_text()
    assert '| accuracy |' in md and f'kimchi-course app {out}/model.pt' in md and '█' not in o
    epochs = [l for l in o.splitlines() if l.split()[:1] and l.split()[0].isdigit()] # 1 frozen + 1: a header per phase
    assert len(epochs) == rep['settings']['freeze_epochs'] + rep['settings']['epochs'] == 2, o
    assert sum(l.startswith('epoch ') for l in o.splitlines()) == 2, o
    assert (rep['presize'], rep['size']) == (40, 32) # issue 26: the sizes it trained at, under those names
    t = rep['test'] # toy-kimchi's own held-out test split: synthetic, so not compared with the peer
    assert t['synthetic'] and t['n'] == 11*20 and t['lo'] <= t['accuracy'] <= t['hi'] and 'not comparable' in rep['test_line']
    assert 'Held-out test split: test accuracy' in (out/'report.md').read_text() and 'held-out test split:' in o
    _predicts(out, o)

def test_train_aihub_like_zip(tmp_path):
    "Hangul class folders, stored in CP949 without the UTF-8 flag, with macOS clutter: the labels are the slugs"
    from kimchi_course.toy import make_toy_kimchi
    from kimchi_course.core import KIMCHI_SLUGS
    src = make_toy_kimchi(tmp_path/'kfood', n_per_class=4, seed=6, hangul='nfc')
    z = zip_folder(src, tmp_path/'kimchi.zip', encoding='cp949', mac_clutter=True)
    rc, o, e, rep = _train(z, tmp_path/'model')
    assert rep['classes'] == KIMCHI_SLUGS and rep['n_train'] + rep['valid_size'] == 44
    assert 'kimchi.zip' in rep['data']
    assert rep['test'] is None and rep['test_line'].startswith('no test split: ') and f"{rep['metrics']['accuracy']:.3f}" in rep['test_line']

def test_train_hf_parquet(tmp_path):
    "The Hugging Face layout: train and validation rows are trained on, the test split is kept apart"
    from kimchi_course.open_data import toy_kimchi_parquet
    hf = toy_kimchi_parquet(tmp_path/'hf', n_per_class=dict(train=3, validation=1, test=2))
    rc, o, e, rep = _train(hf, tmp_path/'model')
    assert rep['n_train'] + rep['valid_size'] == 11*4 and rep['n_valid'] == rep['valid_size']
    assert len(rep['classes']) == 11 and 'parquet' in rep['data']
    t = rep['test'] # issue 26: scored once on the parquet files' test split, beside the peer's 89%
    assert t['n'] == 22 and not t['synthetic'] and t['lo'] <= t['accuracy'] <= t['hi']
    assert '89%' in rep['test_line'] and 'pawlo2013/kimchi-classification' in rep['test_line'] and 'peer' in o
    md = (tmp_path/'model'/'report.md').read_text()
    assert rep['test_line'] in md and (rep['presize'], rep['size']) == (40, 32)

def test_train_any_folder_of_classes(toy_kimchi, tmp_path):
    "Folders that aren't kimchi are classes as they are named (NFC); a README and a broken file are left out, not classes"
    import unicodedata
    names = ['Bibimbap', unicodedata.normalize('NFD', '김밥'), 'tteokbokki']
    data = tmp_path/'kfood'
    for name, kind in zip(names, ['baechu-kimchi', 'kkakdugi', 'pa-kimchi']):
        (data/name).mkdir(parents=True)
        for f in sorted((toy_kimchi/kind).glob('*.jpg')): shutil.copy(f, data/name/f.name)
    (data/'README.txt').write_text('my photos'); (data/'Bibimbap'/'broken.jpg').write_bytes(b'\xff\xd8\xff not a jpeg')
    rc, o, e, rep = _train(data, tmp_path/'model', '--bs', '4')
    assert rep['classes'] == ['Bibimbap', 'tteokbokki', '김밥'] and rep['n_train'] + rep['valid_size'] == 12
    assert 'broken.jpg' in o # the scan names what it left out
    assert any(n in _predicts(tmp_path/'model', o) for n in rep['classes'])

@pytest.mark.parametrize('args, msg', [
    (['--lr', '0'], 'must be above 0'),
    (['--lr', 'fast'], 'must be a number'),
    (['--lr', '1e-3', '--lr-find'], 'not allowed with'),
    (['--arch', 'vgg16'], 'invalid choice'),
    (['--freeze-epochs', '0'], 'must be at least 1'),
    (['--bs', '-4'], 'must be at least 1'),
])
def test_train_bad_arguments_one_line(tmp_path, args, msg):
    rc, out, err = run_main('train', tmp_path, *args)
    assert rc == 2 and msg in err and len(err.strip().splitlines()) == 1, err

def test_train_bad_data_one_line(toy_kimchi, tmp_path):
    (tmp_path/'notes.zip').write_text('not a zip')
    (tmp_path/'one'/'cats').mkdir(parents=True)
    for f in sorted((toy_kimchi/'kkakdugi').glob('*.jpg')): shutil.copy(f, tmp_path/'one'/'cats'/f.name)
    (tmp_path/'a_file').write_text('mine')
    for data, extra, msg in [(tmp_path/'missing', [], 'does not exist'), (tmp_path/'notes.zip', [], 'neither a zip nor a tar'),
                             (tmp_path/'one', [], 'at least 2 classes'), (toy_kimchi, ['--bs', '64'], 'smaller --bs'),
                             (toy_kimchi, ['--out', tmp_path/'a_file'], 'is a file')]:
        rc, out, err = run_main('train', data, *TINY, *extra)
        assert rc == 1 and msg in err and len(err.strip().splitlines()) == 1 and 'Traceback' not in err, (data, err)
    assert (tmp_path/'a_file').read_text() == 'mine'
