"""`kimchi-course app` on Colab (chapter 11): the learner's browser can't open 127.0.0.1 on the Colab machine, so the
app asks Gradio for a share link there and prints it; elsewhere it serves on this machine and says so. No network and
no server here: Gradio's `launch` is replaced by a stand-in that records what it was asked and makes up the link, and
the reachability check of Gradio's share server is a stand-in too (except where it is the thing tested, against a
socket that refuses at once)."""
import sys, types, socket
import pytest
import gradio as gr
import kimchi_course.app as app
from conftest import run_main
from kimchi_course.core import in_colab
from kimchi_course.model_file import save_model

LINK = 'https://0123456789abcdef.gradio.live'

@pytest.fixture(scope='module')
def model_file(tiny_learner, tmp_path_factory):
    return save_model(tiny_learner, tmp_path_factory.mktemp('colab')/'model.pt')

@pytest.fixture
def launched(monkeypatch):
    "Gradio's launch and block_thread replaced: nothing is served; the share link is made up (or, with `fail`, not made)"
    calls = dict(fail=False, blocked=0)
    def launch(self, **kw):
        calls.update(kw)
        self.local_url = f"http://{kw['server_name']}:{kw['server_port']}/"
        self.share_url = LINK if kw.get('share') and not calls['fail'] else None
        return self
    def block(self): calls['blocked'] += 1
    monkeypatch.setattr(gr.Blocks, 'launch', launch)
    monkeypatch.setattr(gr.Blocks, 'block_thread', block)
    monkeypatch.delenv('COLAB_RELEASE_TAG', raising=False)
    monkeypatch.delitem(sys.modules, 'google.colab', raising=False)
    return calls

@pytest.fixture
def online(monkeypatch):
    "Gradio's share server answers (as it does from a learner's Colab); counts the checks"
    asked = []
    monkeypatch.setattr(app, 'share_blocked', lambda timeout=3: asked.append(timeout) or '')
    return asked

def colab(monkeypatch, how:str):
    "Look like Colab: a notebook kernel (`google.colab` imported) or a program started from one (`COLAB_RELEASE_TAG`)"
    if how == 'module': monkeypatch.setitem(sys.modules, 'google.colab', types.ModuleType('google.colab'))
    else: monkeypatch.setenv('COLAB_RELEASE_TAG', 'release-colab-test')
    assert in_colab()

@pytest.mark.parametrize('how', ['module', 'env'])
def test_colab_serves_through_a_share_link(model_file, launched, online, monkeypatch, how):
    colab(monkeypatch, how)
    rc, out, err = run_main('app', model_file, '--port', 7861)
    assert rc == 0 and err == '', err
    assert launched['share'] is True and launched['server_name'] == '127.0.0.1' and launched['server_port'] == 7861
    assert out.count('\n') == 1 and out.startswith(f'kimchi-course app: serving {model_file} at {LINK}, a Gradio share link'), out
    assert 'http://127.0.0.1:7861/' in out and online == [3] and launched['blocked'] == 1

def test_colab_offline_says_so_in_one_line_and_serves_locally(model_file, launched, monkeypatch):
    colab(monkeypatch, 'env')
    monkeypatch.setattr(app, 'share_blocked', lambda timeout=3: "Gradio's share server can't be reached from this machine (gaierror)")
    rc, out, err = run_main('app', model_file, '--port', 7862)
    assert rc == 0 and launched['share'] is False # no tunnel is tried: nothing to wait for
    assert out.count('\n') == 1 and "http://127.0.0.1:7862/ only, which your browser can't open from Colab" in out, out
    assert "can't be reached" in out and 'serve_kernel_port_as_window(7862)' in out

def test_colab_when_gradio_makes_no_link(model_file, launched, online, monkeypatch):
    colab(monkeypatch, 'env'); launched['fail'] = True
    rc, out, err = run_main('app', model_file, '--port', 7863)
    assert rc == 0 and launched['share'] is True
    assert 'no share link (Gradio could not make one' in out and LINK not in out

def test_elsewhere_serves_on_this_machine_without_asking(model_file, launched, online):
    rc, out, err = run_main('app', model_file, '--port', 7864)
    assert rc == 0 and launched['share'] is False and online == [] # not on Colab: the share server is not even checked
    assert out == f"kimchi-course app: serving {model_file} at http://127.0.0.1:7864/ (a browser on this machine can open it). Ctrl+C stops it.\n"

def test_share_flags_override_the_guess(model_file, launched, online, monkeypatch):
    rc, out, _ = run_main('app', model_file, '--share')
    assert rc == 0 and launched['share'] is True and LINK in out
    colab(monkeypatch, 'env')
    rc, out, _ = run_main('app', model_file, '--no-share', '--port', 7865)
    assert rc == 0 and launched['share'] is False and online == [3] # only the --share run checked
    assert "no share link (turned off)" in out

def test_share_blocked_answers_fast_without_a_network(monkeypatch):
    def refuse(addr, timeout): raise socket.gaierror(-3, 'Temporary failure in name resolution')
    monkeypatch.setattr(socket, 'create_connection', refuse)
    why = app.share_blocked(timeout=0.1)
    assert why.startswith("Gradio's share server can't be reached") and 'gaierror' in why

def test_serve_app_returns_when_not_blocking(model_file, launched, online):
    demo = app.serve_app(str(model_file), port=7866, block=False, examples=[])
    assert isinstance(demo, gr.Blocks) and launched['blocked'] == 0 and launched['prevent_thread_lock'] is True
