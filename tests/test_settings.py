"""Each chapter owns the settings it adds (a `…_SETTINGS = dict(…)` in its module, passed to `course_settings`): every
name a chapter passes is the mode's or its own, every name it declares is read, and `KIMCHI_SETTINGS` is applied last,
typed, and refuses keys that no chapter declares."""
import ast, json, re
import pytest
from conftest import ROOT
from kimchi_course.core import MODE_VALUES, chapter_settings, course_settings, known_settings

def notebooks()->dict:
    "Each notebook's module name (`default_exp`) and its code cells' text"
    out = {}
    for nb in sorted((ROOT/'nbs').glob('*.ipynb')):
        code = [''.join(c['source']) for c in json.loads(nb.read_text())['cells'] if c['cell_type'] == 'code']
        mod = next((m.group(1) for c in code for m in [re.search(r'#\| default_exp (\w+)', c)] if m), None)
        out[nb.name] = mod, code
    return out

def passed_names(code:list)->set:
    "Keyword names passed to `course_settings(...)` in these cells (magics left out)"
    out = set()
    for c in code:
        src = '\n'.join(l for l in c.splitlines() if not l.lstrip().startswith(('%', '!')))
        try: tree = ast.parse(src)
        except SyntaxError: continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, 'id', getattr(node.func, 'attr', None)) == 'course_settings':
                out |= {k.arg for k in node.keywords if k.arg and k.arg not in ('mode', 'env', 'photos')}
    return out

def test_chapters_pass_only_the_modes_names_or_their_own():
    own = chapter_settings()
    extra = {nb: sorted(passed_names(code) - set(MODE_VALUES['smoke']) - set(own.get(mod, ())))
             for nb,(mod,code) in notebooks().items() if nb != '00_core.ipynb'} # 00_core's examples use made-up names
    extra = {k:v for k,v in extra.items() if v}
    assert not extra, f"declare these in the chapter's own …_SETTINGS dict, in an exported cell: {extra}"

def test_every_declared_setting_is_read():
    "A name no chapter reads can't linger: each declared setting is read as `.name` in its chapter or in the library"
    nbs, unread = {mod: code for mod,code in notebooks().values() if mod}, {}
    lib = '\n'.join(f.read_text() for f in sorted((ROOT/'kimchi_course').glob('*.py')) if f.name != '_modidx.py')
    for mod, names in chapter_settings().items():
        text = '\n'.join(nbs.get(mod, [])) + lib # e.g. `n_per_class`: read by 01d's `kimchi_path` for every chapter
        unread[mod] = [n for n in names if not re.search(rf'\.{n}\b', text)]
    unread = {k:v for k,v in unread.items() if v}
    assert not unread, f'settings declared but never read (remove them): {unread}'

def test_declarations_are_found():
    "Every declaration is found: the package has some, and none hides inside a function"
    assert len(chapter_settings()) >= 10 and 'keras_epochs' in known_settings()

def test_override_is_last_and_typed(monkeypatch):
    monkeypatch.setenv('KIMCHI_SETTINGS', 'seed=7,lr=0.5,pretrained=false')
    s = course_settings('smoke', seed=3, lr=dict(smoke=0.1, full=0.2))
    assert (s.seed, s.lr, s.pretrained, s.overridden) == (7, 0.5, False, ('seed', 'lr', 'pretrained'))

@pytest.mark.parametrize('text,msg', [('sed=7', "'sed' is not a course setting"), ('epochs=3.5', "epochs='3.5' is not a valid int"),
                                      ('seed', 'is not key=value'), ('mode=full', 'KIMCHI_MODE')])
def test_bad_override_names_it(monkeypatch, text, msg):
    monkeypatch.setenv('KIMCHI_SETTINGS', text)
    with pytest.raises(ValueError, match=msg.replace('(', r'\(')): course_settings('smoke')

def test_full_mode_sizes_follow_the_photos(monkeypatch):
    "Issue 26: one rule (never enlarge more than 2x), the reason in the table; smoke mode unchanged; KIMCHI_SETTINGS wins"
    from kimchi_course.core import size_rule, FULL_SIZES
    monkeypatch.delenv('KIMCHI_SETTINGS', raising=False)
    assert size_rule(64)[:2] == (128, 128) and size_rule(3024)[:2] == FULL_SIZES == (460, 224)
    for side in (20, 40, 64, 100, 150, 229, 230, 500, 4000):
        r = size_rule(side)
        assert r.presize <= max(2*side, 64) and r.size <= r.presize and r.size % 32 == 0, (side, r)
    s = course_settings('full', env={}, photos=lambda env: (64, 'the open data'))
    assert (s.presize, s.size) == (128, 128) and 'the open data: 64 px photos' in s.why['size']
    assert '| why |' in s._repr_markdown_()
    smoke = course_settings('smoke', env={}, photos=lambda env: (64, 'the open data'))
    assert (smoke.presize, smoke.size, smoke.why) == (MODE_VALUES['smoke']['presize'], MODE_VALUES['smoke']['size'], {})
    o = course_settings('full', env={'KIMCHI_SETTINGS': 'presize=40,size=32'}, photos=(64, 'the open data'))
    assert (o.presize, o.size) == (40, 32) and o.why['presize'].startswith("the rule's value is 128")
