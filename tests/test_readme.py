"README.md is generated from nbs/index.ipynb and must match it; the index's chapter table must list every chapter."
import json, subprocess, sys
from conftest import ROOT

def test_readme_matches_index():
    r = subprocess.run([sys.executable, str(ROOT/'tools'/'readme.py'), '--check'], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr

def test_index_chapter_table_is_current():
    from kimchi_course.core import chapter_table
    cells = json.loads((ROOT/'nbs'/'index.ipynb').read_text())['cells']
    shown = next(''.join(o['text']) for c in cells if c['cell_type'] == 'code' for o in c.get('outputs', [])
                 if 'chapter_table' in ''.join(c['source']) and o.get('output_type') == 'stream')
    assert shown.strip() == chapter_table(ROOT/'nbs').strip(), 'index.ipynb is stale: run `nbdev-test nbs/index.ipynb --save` then `python tools/readme.py`'

def test_readme_gives_the_two_commands():
    text = (ROOT/'README.md').read_text()
    assert 'pip install -e ".[dev]" && kimchi-course demo' in text
    assert 'pip install -e ".[dev]" && bash tools/test.sh' in text
    assert 'python tools/rehearse_full.py' in text # the second command: the Colab-style full-mode rehearsal
    ci = (ROOT/'.ci'/'run').read_text()
    assert 'pip install -e ".[dev]"' in ci and 'python tools/rehearse_full.py' in ci and 'bash tools/test.sh' in ci
    assert ci.index('rehearse_full.py') < ci.index('bash tools/test.sh') # the tests last: CI ends with pytest's summary
