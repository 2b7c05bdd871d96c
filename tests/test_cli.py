"""The `kimchi-course` command (chapter 13), in-process through `run_main`: --help everywhere, one-line errors for bad
arguments, help and parsing that import no chapter, and the console script itself. The demo end to end is chapter 12b's
run (files, accuracy, its printed predict command run in a shell); what it prints and writes is checked on tests/test_train.py's
toy-kimchi `train` run, and `predict` without fastai in tests/test_predict_cli.py."""
import os, subprocess, sys
from pathlib import Path
import pytest
from conftest import run_main, run_cli
from kimchi_course.cli import *

def test_help():
    rc, out, err = run_main('--help')
    assert rc == 0 and all(c in out for c in COMMANDS)

@pytest.mark.parametrize('cmd, opt', [('demo', '--also-pickle'), ('train', '--lr-find'), ('train', '--record-shards'), ('prepare', '--per-class'), ('bench-presize', '--workers'),
                                      ('predict', '--top-k'), ('app', '--port')])
def test_subcommand_help(cmd, opt):
    rc, out, err = run_main(cmd, '--help')
    assert rc == 0 and opt in out

@pytest.mark.parametrize('args, msg', [
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

def _loaded(*lines)->list:
    "Which heavy modules a fresh interpreter has imported after running `lines`"
    code = '; '.join(lines) + "; print(sorted(m for m in ('fastai', 'torchvision', 'kimchi_course.app', 'kimchi_course.dataloaders') if m in sys.modules))"
    r = subprocess.run([sys.executable, '-c', 'import sys; ' + code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    return eval(r.stdout.strip().splitlines()[-1])

def test_help_and_parsing_import_no_chapter():
    "One fresh interpreter: help, then parsing `demo`, leave every heavy module unimported (chapter 13 checks `predict`'s parsing)"
    assert _loaded("from kimchi_course.cli import build_parser", "build_parser(None).format_help()",
                   "build_parser('demo').parse_args(['demo', '--epochs', '2'])") == []

def test_python_m_cli_runs_main():
    r = subprocess.run([sys.executable, '-m', 'kimchi_course.cli', 'train', '--lr', '0', 'x'], capture_output=True, text=True)
    assert r.returncode == 2 and 'must be above 0' in r.stderr

def test_demo_outputs_also_pickle(tiny_learner, tmp_path):
    "`--also-pickle` adds a fastai export that load_learner reads; model.pt predicts what the learner predicts"
    from fastai.vision.all import Learner, load_learner
    from kimchi_course.core import course_settings
    from kimchi_course.model_file import load_model
    from kimchi_course.training import demo_settings, write_outputs
    l = Learner(tiny_learner.dls, tiny_learner.model, loss_func=tiny_learner.loss_func); l.arch = tiny_learner.arch # export resets an optimiser: not the shared one
    s = demo_settings(epochs=1, n_per_class=4)
    res = dict(data='toy-kimchi (synthetic)', metrics=dict(valid_loss=2.0, accuracy=0.25), seconds=1.5, lr=1e-2, n_valid=len(l.dls.valid_ds))
    files = write_outputs(l, tmp_path, res, s, command='demo', also_pickle=True)
    assert {p.name for p in tmp_path.iterdir()} == {'model.pt', 'model.pkl', 'confusion_matrix.png', 'report.md', 'report.json'}
    assert '# kimchi-course demo' in files['report'].read_text()
    assert load_model(files['model']).meta['accuracy'] == 0.25
    assert list(load_learner(files['pickle']).dls.vocab) == list(l.dls.vocab)

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
    """Issue 26: `prepare hf` with no network (HF_HUB_OFFLINE=1) and no cached copy (an empty HF_HOME and course cache), from the
    console script: one line that names KIMCHI_HF_DIR, exit status 2. Chapter 13 checks `train hf` and `prepare hf` through
    `main` in-process; `prepare` here because its command imports no fastai (`train hf` takes twice as long to say the same)."""
    monkeypatch.setenv('HF_HUB_OFFLINE', '1'); monkeypatch.setenv('HF_HOME', str(tmp_path/'hf-home'))
    monkeypatch.setenv('KIMCHI_CACHE', str(tmp_path/'cache')); monkeypatch.delenv('KIMCHI_HF_DIR', raising=False)
    r = run_cli('prepare', 'hf', tmp_path/'dest', env={**os.environ})
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr[-2000:]
    assert "couldn't reach the Hugging Face Hub" in r.stderr and 'KIMCHI_HF_DIR' in r.stderr, r.stderr

def test_help_shows_the_open_data():
    for cmd in ('train', 'prepare'):
        rc, o, e = run_main(cmd, '--help')
        assert rc == 0 and 'hf: the open Hugging Face kimchi data' in ' '.join(o.split()), o
