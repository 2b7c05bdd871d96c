"""`kimchi-course app MODEL` served for real on 127.0.0.1 (once, for all the tests here) and used: in headless Chromium
(upload a photo, read the top 3 off the page; a non-image gets one clear message), through its API with `gradio_client`
(an empty file gets a clear error; after hostile uploads it still predicts), and the Hugging Face Spaces folder served by
its own `python app.py` from a fresh venv that installs the locally built wheel. Chapter 11 serves the app too and checks
through the API what is not repeated here: a photo's top 3 equal `label_probs`, a text file and a decompression bomb are
refused with "can't use NAME", and a file over `--max-file-size` is refused by the client and by the server (HTTP 413)."""
import subprocess, sys
from pathlib import Path
import pytest
from conftest import ROOT, fresh_venv

sys.path.insert(0, str(ROOT/'tools'))
from app_screenshot import CHROMIUM, DRIVER, free_port, kimchi_course_cmd, start_app, stop_app, browser, upload_and_predict
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from kimchi_course.app import photo_zoo, label_probs, write_space, toy_examples
from kimchi_course.model_file import save_model, load_model

needs_chromium = pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="needs Debian's chromium and chromium-driver (tools/test.sh installs them where apt-get can)")
LIMIT_MB = 1

@pytest.fixture(scope='module')
def made(tiny_learner, toy_kimchi, tmp_path_factory):
    "The tiny learner as a model file, and the photo zoo (good photos, broken files, a decompression bomb)"
    root = tmp_path_factory.mktemp('served')
    model = save_model(tiny_learner, root/'model.pt', meta=dict(data='toy-kimchi (tests)'))
    zoo = photo_zoo(sorted((toy_kimchi/'kkakdugi').glob('*.jpg'))[0], root/'photos')
    return model, zoo

@pytest.fixture(scope='module')
def served(made):
    "`kimchi-course app` (the console script) serving the model on 127.0.0.1 with a 1 MB upload limit"
    port = free_port(); url = f'http://127.0.0.1:{port}/'
    p, secs = start_app(kimchi_course_cmd() + ['app', made[0], '--port', port, '--max-file-size', LIMIT_MB], url)
    print(f"\nthe app answered {secs:.1f} s after `kimchi-course app` started")
    yield url
    stop_app(p)

@pytest.fixture(scope='module')
def client(served): return Client(served, verbose=False)

@pytest.fixture(scope='module')
def page(tmp_path_factory):
    d = browser(tmp_path_factory.mktemp('chrome'))
    yield d
    d.quit()

def expected(made, name)->list:
    "The top 3 labels `label_probs` gives in this process"
    return list(label_probs(load_model(made[0], device='cpu'), made[1][name]))

def test_api_refuses_an_empty_file(made, client):
    with pytest.raises(AppError) as e: client.predict(handle_file(str(made[1]['empty.png'])), api_name='/predict')
    assert "can't use empty.png: empty file" in str(e.value) and 'Traceback' not in str(e.value)

def test_api_still_answers_after_hostile_uploads(made, client):
    for name in ('bomb.png', 'notes.jpg'):
        with pytest.raises(AppError): client.predict(handle_file(str(made[1][name])), api_name='/predict')
    got = client.predict(handle_file(str(made[1]['cmyk.jpg'])), api_name='/predict')
    assert [c['label'] for c in got['confidences']] == expected(made, 'cmyk.jpg') and got['label'] == got['confidences'][0]['label']

@needs_chromium
def test_browser_shows_the_top_3(made, served, page):
    got = upload_and_predict(page, served, made[1]['rotated-exif.jpg'])
    assert 'labels' in got, got
    assert [l for l,_ in got['labels']] == expected(made, 'rotated-exif.jpg')
    pct = [float(p.rstrip('%')) for _,p in got['labels']]
    assert pct == sorted(pct, reverse=True) and 0 < sum(pct) <= 100.5

@needs_chromium
def test_browser_non_image_one_clear_message(made, served, page):
    got = upload_and_predict(page, served, made[1]['notes.jpg'])
    assert "can't use notes.jpg: not an image file" in got.get('error', ''), got
    text = page.execute_script('return document.body.textContent') # the whole page, the toast included
    assert 'Traceback' not in text and 'Error' in got['error'] and text.count("can't use notes.jpg") == 1, text[-1000:]

def test_space_folder_serves_with_the_local_wheel(made, dist, tmp_path):
    "write_space's folder holds all app.py needs; installed from its requirements.txt (the local wheel), `python app.py` serves"
    model, zoo = made
    wheel = next(dist.glob('*.whl'))
    space = write_space(model, tmp_path/'space', examples=[zoo['upright.png'], zoo['cmyk.jpg']], requirement=f'kimchi-course[app] @ {wheel.as_uri()}')
    assert sorted(p.name for p in space.iterdir()) == ['.kimchi-space.json', 'README.md', 'app.py', 'examples', 'model.pt', 'requirements.txt']
    py = fresh_venv(tmp_path/'venv', ['-r', space/'requirements.txt'])
    r = subprocess.run([py, '-c', 'import kimchi_course; print(kimchi_course.__file__)'], capture_output=True, text=True, cwd=space)
    assert r.returncode == 0 and Path(r.stdout.strip()).is_relative_to(tmp_path/'venv'), r.stdout + r.stderr
    port = free_port(); url = f'http://127.0.0.1:{port}/'
    p, secs = start_app([py, 'app.py'], url, cwd=space, env=dict(GRADIO_SERVER_NAME='127.0.0.1', GRADIO_SERVER_PORT=str(port)))
    try:
        got = Client(url, verbose=False).predict(handle_file(str(zoo['upright.png'])), api_name='/predict')
        assert [c['label'] for c in got['confidences']] == expected(made, 'upright.png')
    finally: stop_app(p)
    print(f"\nthe Space's app.py answered {secs:.1f} s after start")

def test_space_folder_refuses_foreign_folders(made, tmp_path):
    (tmp_path/'mine').mkdir(); (tmp_path/'mine'/'notes.txt').write_text('mine')
    with pytest.raises(ValueError, match='not made by this Space folder'): write_space(made[0], tmp_path/'mine')
    assert [p.name for p in (tmp_path/'mine').iterdir()] == ['notes.txt']
    with pytest.raises(ValueError, match='not a kimchi-course model file'): write_space(made[1]['notes.jpg'], tmp_path/'s2')
    assert not (tmp_path/'s2').exists()
