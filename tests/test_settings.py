"""Every setting a chapter adds with `course_settings(name=…)` is a known course setting, so that `KIMCHI_SETTINGS`
can reach it from any chapter, and `KIMCHI_SETTINGS` itself is applied last, typed, and refuses unknown keys."""
import ast, json
import pytest
from conftest import ROOT
from kimchi_course.core import CHAPTER_SETTINGS, MODE_VALUES, course_settings

def chapter_setting_names()->dict:
    "Keyword names passed to `course_settings(...)` in every notebook's code, by notebook"
    out = {}
    for nb in sorted((ROOT/'nbs').glob('*.ipynb')):
        for c in json.loads(nb.read_text())['cells']:
            if c['cell_type'] != 'code': continue
            src = '\n'.join(l for l in ''.join(c['source']).splitlines() if not l.lstrip().startswith(('%', '!')))
            try: tree = ast.parse(src)
            except SyntaxError: continue
            for node in ast.walk(tree):
                if isinstance(node, ast.Call) and getattr(node.func, 'id', getattr(node.func, 'attr', None)) == 'course_settings':
                    out.setdefault(nb.name, set()).update(k.arg for k in node.keywords if k.arg and k.arg not in ('mode', 'env', 'photos'))
    return out

def test_every_chapter_setting_is_known():
    known = set(MODE_VALUES['smoke']) | set(CHAPTER_SETTINGS)
    missing = {nb: sorted(names - known) for nb, names in chapter_setting_names().items() if names - known}
    # 00_core's own examples use made-up names on purpose (`names=dict(a=1)`)
    missing.pop('00_core.ipynb', None)
    assert not missing, f'add these to core.CHAPTER_SETTINGS so KIMCHI_SETTINGS can reach them: {missing}'

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
