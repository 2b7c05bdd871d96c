"""Regenerate nbs/images/app_screenshot.png, the deploy chapter's picture of the served app:

    python tools/app_screenshot.py [--out nbs/images/app_screenshot.png]

It fine-tunes a small smoke-mode model on toy-kimchi (from the toy-pretrained resnet18 of chapter 02a, read from the
course cache, where it is built once per machine), serves it with `kimchi-course app` on 127.0.0.1, opens the page
in headless Chromium, uploads a toy-kimchi photo the model has not seen, presses Predict, reads the top 3 labels off
the page and saves the screenshot. Needs Debian's `chromium` and `chromium-driver` and a Korean font for the Hangul
labels (`apt-get install chromium chromium-driver fonts-nanum`). tests/test_app_served.py drives the page with the
same functions."""
import argparse, os, shutil, socket, subprocess, sys, tempfile, time, urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')
DRIVER = shutil.which('chromedriver')
FLAGS = ('--headless=new', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
         '--disable-sync', '--no-first-run', '--disable-quic')

def free_port()->int:
    "A TCP port on 127.0.0.1 that nobody listens on right now"
    with socket.socket() as so: so.bind(('127.0.0.1', 0)); return so.getsockname()[1]

def kimchi_course_cmd()->list:
    "The installed `kimchi-course` console script"
    exe = shutil.which('kimchi-course') or str(Path(sys.executable).parent/'kimchi-course')
    if not Path(exe).exists(): raise FileNotFoundError("no kimchi-course command: pip install -e '.[dev]' first")
    return [exe]

def start_app(
    cmd:list, # the command that serves the app, e.g. kimchi_course_cmd() + ['app', 'model.pt', '--port', '7860']
    url:str, # where it will answer
    cwd=None, # folder to run it in
    env:dict=None, # extra environment variables
    timeout:float=180, # seconds to wait for the first answer
)->tuple:
    "Start `cmd` and wait until `url` answers: `(process, seconds from start until the first answer)`"
    cmd, log = [str(c) for c in cmd], tempfile.TemporaryFile('w+')
    start = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, text=True,
                         env={**os.environ, 'GRADIO_ANALYTICS_ENABLED': 'False', **(env or {})})
    p.log = log
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200: return p, time.perf_counter() - start
        except OSError: pass
        if p.poll() is not None or time.perf_counter() - start > timeout:
            stop_app(p); log.seek(0)
            raise RuntimeError(f"{' '.join(map(str, cmd))} did not serve {url} (exit status {p.returncode}):\n{log.read()[-3000:]}")
        time.sleep(0.2)

def stop_app(p):
    "Stop a process `start_app` started, and close its log"
    if p.poll() is None:
        p.terminate()
        try: p.wait(timeout=20)
        except subprocess.TimeoutExpired: p.kill(); p.wait()
    p.log.close()

def browser(
    profile, # an empty folder for Chromium's profile (a fresh one per run)
    size:tuple=(1000, 900), # window size in pixels (the screenshot's size)
):
    "Headless Chromium driven by Selenium; everything it writes stays in `profile` (not in ~/.cache or ~/.config)"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    o = webdriver.ChromeOptions()
    o.binary_location = CHROMIUM
    for a in FLAGS + (f'--window-size={size[0]},{size[1]}', f'--user-data-dir={profile}'): o.add_argument(a)
    env = {**os.environ, 'XDG_CACHE_HOME': str(Path(profile)/'xdg-cache'), 'XDG_CONFIG_HOME': str(Path(profile)/'xdg-config')}
    return webdriver.Chrome(service=Service(DRIVER, env=env), options=o)

def upload_and_predict(
    d, # a `browser`
    url:str, # the served app
    photo, # the file to upload
    timeout:float=60, # seconds to wait for each step
)->dict:
    "Open the app, upload `photo`, press Predict: `{'labels': [(label, '61%'), ...]}` or `{'error': the page's message}`"
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    d.get(url)
    wait = WebDriverWait(d, timeout)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, 'input[type=file]'))[0].send_keys(str(Path(photo).absolute()))
    # the upload is done when the Image box shows the file (Gradio serves it back from its upload folder)
    toasts = lambda d: d.find_elements(By.CSS_SELECTOR, '[data-testid="toast-body"]')
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, 'img[src*="file="]') or toasts(d))
    if not toasts(d): d.find_element(By.XPATH, "//button[normalize-space()='Predict']").click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, '.confidence-set') or toasts(d))
    toast = lambda d: ' '.join(' '.join(t.get_attribute('textContent').split()) for t in d.find_elements(By.CSS_SELECTOR, '[data-testid="toast-body"]'))
    if toast(d): return dict(error=toast(d))
    rows = d.find_elements(By.CSS_SELECTOR, '.confidence-set')
    return dict(labels=[(r.find_element(By.CSS_SELECTOR, '.text').text, r.find_element(By.CSS_SELECTOR, '.confidence').text) for r in rows])

def make_model(dest)->tuple:
    "Fine-tune the toy-pretrained resnet18 on toy-kimchi with the smoke-mode settings; write it with `save_model`, return it and its accuracy"
    from kimchi_course.core import course_settings, metrics_table, quiet_known_warnings
    from kimchi_course.pretraining import course_learner
    from kimchi_course.toy import make_toy_kimchi
    from kimchi_course.dataloaders import kimchi_dls
    from kimchi_course.model_file import save_model
    quiet_known_warnings()
    s = course_settings('smoke', n_per_class=16, epochs=2)
    learn = course_learner(kimchi_dls(make_toy_kimchi(n_per_class=s.n_per_class, seed=s.seed), size=s.size, presize=s.presize,
                                      bs=s.bs, seed=s.seed, workers=0), s)
    with learn.no_bar(), learn.no_logging(): learn.fine_tune(s.epochs, base_lr=s.lr, freeze_epochs=s.freeze_epochs)
    acc = metrics_table(learn)['accuracy']
    return save_model(learn, Path(dest)/'model.pt', meta=dict(data='toy-kimchi (synthetic), smoke mode', accuracy=round(acc, 3))), acc

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--out', default=str(ROOT/'nbs'/'images'/'app_screenshot.png'), help='the PNG to write (default: %(default)s)')
    a = p.parse_args(argv)
    if not (CHROMIUM and DRIVER): sys.exit('needs chromium and chromedriver: apt-get install chromium chromium-driver fonts-nanum')
    with tempfile.TemporaryDirectory() as tmp:
        model, acc = make_model(tmp) # toy-kimchi and the backbone come from the course cache (KIMCHI_CACHE or ~/.cache/kimchi-course)
        from kimchi_course.app import toy_examples
        photo = toy_examples(n=1, seed=777)[0] # a toy-kimchi image neither the model nor the app's examples have
        port = free_port(); url = f'http://127.0.0.1:{port}/'
        app, secs = start_app(kimchi_course_cmd() + ['app', str(model), '--port', str(port)], url)
        try:
            d = browser(Path(tmp)/'chrome')
            try:
                got = upload_and_predict(d, url, photo)
                if 'labels' not in got: sys.exit(f"the app answered with an error: {got}")
                Path(a.out).parent.mkdir(parents=True, exist_ok=True)
                d.save_screenshot(a.out)
            finally: d.quit()
        finally: stop_app(app)
    print(f"model: validation accuracy {acc:.3f} on toy-kimchi; the app answered {secs:.1f} s after start; top 3 for {Path(photo).parent.name}/{Path(photo).name}: {got['labels']}; wrote {a.out}")

if __name__ == '__main__': main()
