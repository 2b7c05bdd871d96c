"""The `kimchi-course` command (chapter 13), in-process through `run_main`: --help everywhere, one-line errors for bad
arguments, the demo end to end (model.pt, report, the next commands, one line per epoch off a terminal), sub-commands
imported lazily (predict without fastai), and the console script itself."""
import os, subprocess, sys
from pathlib import Path
import pytest
from conftest import run_main, run_cli
from kimchi_course.cli import *
from kimchi_course.cli import _command

def test_help():
    rc, out, err = run_main('--help')
    assert rc == 0 and all(c in out for c in COMMANDS)

@pytest.mark.parametrize('cmd, opt', [('demo', '--also-pickle'), ('train', '--lr-find'), ('train', '--record-shards'), ('prepare', '--per-class'), ('bench-presize', '--workers'),
                                      ('predict', '--top-k'), ('app', '--port')])
def test_subcommand_help(cmd, opt):
    rc, out, err = run_main(cmd, '--help')
    assert rc == 0 and opt in out

@pytest.mark.parametrize('args, msg', [
    (['demo', '--epochs', '-1'], 'must be at least 1'),
    (['demo', '--epochs', '0'], 'must be at least 1'),
    (['demo', '--epochs', 'many'], 'whole number'),
    (['demo', '--seed', '-3'], '0 or more'),
    (['demo', '--n-per-class', '0'], 'must be at least 1'),
    (['demo', '--bogus'], 'unrecognized arguments'),
    (['frobnicate'], 'invalid choice'),
    (['prepare', 'src'], 'required'),
    (['prepare', 'src', 'dest', '--per-class', '-2'], 'must be at least 1'),
    (['bench-presize', '--workers', 'x'], 'whole number'),
    ([], 'required'),
])
def test_bad_arguments_one_line(args, msg):
    rc, out, err = run_main(*args)
    assert rc == 2 and msg in err
    assert len(err.strip().splitlines()) == 1, err
    assert 'Traceback' not in err

def test_console_script():
    "The installed `kimchi-course` script runs `main`"
    r = run_cli('demo', '--epochs', '-1')
    assert r.returncode == 2 and 'must be at least 1' in r.stderr and len(r.stderr.strip().splitlines()) == 1

def test_command_is_found_before_parsing():
    assert _command(['--help']) is None and _command(['predict', 'm.pt', '-k']) == 'predict'
    assert build_parser().parse_args(['demo']).command == 'demo' # a placeholder: it parses, and has no function to run
    assert not hasattr(build_parser().parse_args(['demo']), 'func')

def _loaded(*lines)->list:
    "Which heavy modules a fresh interpreter has imported after running `lines`"
    code = '; '.join(lines) + "; print(sorted(m for m in ('fastai', 'torchvision', 'kimchi_course.app', 'kimchi_course.dataloaders') if m in sys.modules))"
    r = subprocess.run([sys.executable, '-c', 'import sys; ' + code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    return eval(r.stdout.strip().splitlines()[-1])

def test_help_and_parsing_import_no_chapter():
    assert _loaded("from kimchi_course.cli import build_parser", "build_parser(None).format_help()") == []
    assert _loaded("from kimchi_course.cli import build_parser", "build_parser('demo').parse_args(['demo', '--epochs', '2'])") == []

@pytest.fixture(scope='module')
def model_file(tiny_learner, tmp_path_factory):
    from kimchi_course.model_file import save_model
    return save_model(tiny_learner, tmp_path_factory.mktemp('cli')/'model.pt')

def test_predict_never_imports_fastai(model_file, toy_kimchi):
    "`kimchi-course predict` (main, as the console script calls it) on a model file, in a fresh interpreter"
    photo = sorted(toy_kimchi.rglob('*.jpg'))[0]
    mods = _loaded("from kimchi_course.cli import main", f"rc = main(['predict', {str(model_file)!r}, {str(photo)!r}])",
                   "assert rc == 0, rc")
    assert 'fastai' not in mods and 'torchvision' not in mods and 'kimchi_course.app' in mods

def test_demo_is_train_on_toy_kimchi_pretrained():
    "The demo's settings: toy-pretrained weights (smoke mode), 30 images per class"
    s = demo_settings()
    assert s.pretrained is True and s.n_per_class == 30 and s.epochs == s.demo_epochs

def test_python_m_cli_runs_main():
    r = subprocess.run([sys.executable, '-m', 'kimchi_course.cli', 'train', '--lr', '0', 'x'], capture_output=True, text=True)
    assert r.returncode == 2 and 'must be above 0' in r.stderr

def test_demo_end_to_end(tmp_path):
    "demo → model.pt, confusion matrix, report with the next commands; one line per epoch off a terminal; then predict works"
    import matplotlib
    backend, out = matplotlib.get_backend(), tmp_path/'demo'
    rc, stdout, err = run_main('demo', '--out', out, '--epochs', '2', '--no-pretrained') # random weights: no backbone build in the test cache
    assert rc == 0, err[-3000:]
    assert {p.name for p in out.iterdir()} == {'model.pt', 'confusion_matrix.png', 'report.md', 'report.json'}
    assert (out/'confusion_matrix.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert matplotlib.get_backend() == backend
    report = (out/'report.md').read_text()
    acc = float(next(l for l in report.splitlines() if l.startswith('| accuracy |')).split('|')[2])
    assert acc > 1/11, f'demo accuracy {acc:.3f} is not above chance (1/11)'
    assert 'synthetic' in report and f'kimchi-course app {out}/model.pt' in report
    epochs = [l for l in stdout.splitlines() if l.split()[:1] and l.split()[0].isdigit()]
    assert len(epochs) == 3 and sum(l.startswith('epoch ') for l in stdout.splitlines()) == 2 # 1 frozen + 2, a header per phase
    assert '█' not in stdout
    predict = next(l.strip() for l in stdout.splitlines() if l.strip().startswith('kimchi-course predict '))
    assert predict.startswith(f'kimchi-course predict {out}/model.pt ')
    rc, pout, perr = run_main(*predict.split()[1:]) # the printed command, as a user would paste it
    assert rc == 0 and pout.count('%') == 3, perr

def test_demo_outputs_also_pickle(tiny_learner, tmp_path):
    "`--also-pickle` adds a fastai export that load_learner reads; model.pt predicts what the learner predicts"
    from fastai.vision.all import Learner, load_learner
    from kimchi_course.core import course_settings
    from kimchi_course.model_file import load_model
    l = Learner(tiny_learner.dls, tiny_learner.model, loss_func=tiny_learner.loss_func); l.arch = tiny_learner.arch # export resets an optimiser: not the shared one
    s = demo_settings(epochs=1, n_per_class=4)
    res = dict(data='toy-kimchi (synthetic)', metrics=dict(valid_loss=2.0, accuracy=0.25), seconds=1.5, lr=1e-2, n_valid=len(l.dls.valid_ds))
    files = write_outputs(l, tmp_path, res, s, command='demo', also_pickle=True)
    assert {p.name for p in tmp_path.iterdir()} == {'model.pt', 'model.pkl', 'confusion_matrix.png', 'report.md', 'report.json'}
    assert '# kimchi-course demo' in files['report'].read_text()
    assert load_model(files['model']).meta['accuracy'] == 0.25
    assert list(load_learner(files['pickle']).dls.vocab) == list(l.dls.vocab)

def test_next_commands_quote_paths():
    assert next_commands(Path('my demo/model.pt'), Path('a b.jpg')) == ["kimchi-course predict 'my demo/model.pt' 'a b.jpg'",
                                                                     "kimchi-course app 'my demo/model.pt'"]

def test_demo_refuses_a_file_as_out(tmp_path):
    f = tmp_path/'a_file'; f.write_text('mine')
    rc, out, err = run_main('demo', '--out', f, '--epochs', '1', '--n-per-class', '4', '--no-pretrained')
    assert rc == 1 and 'is a file' in err and len(err.strip().splitlines()) == 1
    assert f.read_text() == 'mine'

def test_prepare_bad_source_one_line(tmp_path):
    rc, out, err = run_main('prepare', tmp_path/'missing.zip', tmp_path/'cache')
    assert rc == 1 and 'does not exist' in err and len(err.strip().splitlines()) == 1

def test_prepare_empty_folder_one_line(tmp_path):
    (tmp_path/'empty').mkdir()
    rc, out, err = run_main('prepare', tmp_path/'empty', tmp_path/'cache')
    assert rc == 1 and len(err.strip().splitlines()) == 1 and 'Traceback' not in err, err

def test_hf_offline_without_a_copy_exits_2_with_one_line(tmp_path, monkeypatch):
    "Issue 26: `train hf` and `prepare hf` with no network (HF_HUB_OFFLINE=1) and no cached copy (an empty HF_HOME and course cache)"
    monkeypatch.setenv('HF_HUB_OFFLINE', '1'); monkeypatch.setenv('HF_HOME', str(tmp_path/'hf-home'))
    monkeypatch.setenv('KIMCHI_CACHE', str(tmp_path/'cache')); monkeypatch.delenv('KIMCHI_HF_DIR', raising=False)
    for cmd in (['train', 'hf'], ['prepare', 'hf', str(tmp_path/'dest')]):
        rc, o, e = run_main(*cmd)
        assert rc == 2 and len(e.strip().splitlines()) == 1, (cmd, rc, e)
        assert "couldn't reach the Hugging Face Hub" in e and 'KIMCHI_HF_DIR' in e
    r = run_cli('train', 'hf', env={**os.environ}) # the console script: the same line and exit status
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr[-2000:]

def test_help_shows_the_open_data():
    for cmd in ('train', 'prepare'):
        rc, o, e = run_main(cmd, '--help')
        assert rc == 0 and 'hf: the open Hugging Face kimchi data' in ' '.join(o.split()), o
