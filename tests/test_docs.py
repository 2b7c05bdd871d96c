"""The offline docs preview (tools/preview_docs.py): every page opens in headless Chromium with its title, no `#|`
directive text, every figure an <img> that loads, and no error output."""
import subprocess, sys
import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT/'tools'))
from app_screenshot import CHROMIUM, DRIVER, browser as chromium
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="needs Debian's chromium and chromium-driver (tools/test.sh installs them where apt-get can)")

@pytest.fixture(scope='module')
def pages(tmp_path_factory):
    out = tmp_path_factory.mktemp('preview')
    r = subprocess.run([sys.executable, str(ROOT/'tools'/'preview_docs.py'), '--out', str(out)], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    return sorted(out.glob('*.html'))

@pytest.fixture(scope='module')
def browser(tmp_path_factory):
    d = chromium(tmp_path_factory.mktemp('chrome'), size=(1280, 2000))
    yield d
    d.quit()

def test_every_chapter_has_a_page(pages):
    names = {p.name for p in pages}
    assert 'index.html' in names
    assert len(pages) == 1 + len(list((ROOT/'nbs').glob('[0-9]*.ipynb')))

def test_pages_in_browser(pages, browser):
    problems = []
    for p in pages:
        browser.get(p.as_uri())
        # the page's rendered text: `innerText` in one script call (WebDriver's element text, its own visible-text
        # algorithm, took two thirds of this test on the long pages, and leaves out code scrolled sideways)
        title, text = browser.title, browser.execute_script('return document.body.innerText')
        h1 = browser.find_element('css selector', 'h1').text
        if not title.strip() or 'kimchi-course' not in title: problems.append(f'{p.name}: title {title!r}')
        if not h1.strip(): problems.append(f'{p.name}: no heading')
        if '#|' in text: problems.append(f'{p.name}: directive text shows: ' + text[text.index('#|'):][:60])
        if 'Traceback (most recent call last)' in text or browser.find_elements('css selector', '[data-mime-type="application/vnd.jupyter.error"], .jp-OutputArea-output.jp-mod-error'):
            problems.append(f'{p.name}: an error output cell')
        # figures: every image in an output, and every local image in the prose (nbs/images/...), must be an <img> that decoded
        bad = browser.execute_script("""return [...document.querySelectorAll('.jp-OutputArea img, .jp-RenderedImage img, .jp-RenderedMarkdown img:not([src^="http"])')]
            .filter(i => !(i.complete && i.naturalWidth > 0)).map(i => (i.src || '').slice(0, 60));""")
        if bad: problems.append(f'{p.name}: figures that do not load: {bad}')
    assert not problems, '\n'.join(problems)

def test_navigation_lists_every_page(pages, browser):
    from selenium.webdriver.support.ui import WebDriverWait
    home = next(p for p in pages if p.name == 'index.html').as_uri()
    browser.get(home)
    # a busy machine can hand back the page before it is parsed: wait for the links (not a fixed sleep), then count them
    read = "return [...document.querySelectorAll('.kc-nav a')].map(a => a.getAttribute('href'))"
    links = WebDriverWait(browser, 60).until(lambda d: d.execute_script(read) if d.current_url == home else None,
                                             message=f'no navigation links on {home} within 60 s')
    assert len(links) == len(pages) + 1, links  # every page plus the home link
