"""Write README.md from nbs/index.ipynb without Quarto, and nbs/sidebar.yml from the chapters; or check both are current.

Usage: python tools/readme.py          # (re)write README.md and nbs/sidebar.yml
       python tools/readme.py --check  # exit 1 if either differs from what the notebooks give
Markdown cells are copied; code cells are dropped unless they have outputs; `#| echo: false` hides a cell's code,
`#| output: asis` copies its printed output as Markdown (as Quarto does), `#| hide` drops the cell.
"""
import json, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_DIR = re.compile(r'^#\|\s*([\w-]+):?\s*(.*)$')

def directives(src:str)->dict:
    "The `#| name: value` directives at the top of a cell's source"
    out = {}
    for line in src.splitlines():
        m = _DIR.match(line.strip())
        if not m: break
        out[m.group(1)] = m.group(2).strip()
    return out

def cell_md(cell:dict)->str:
    "The Markdown a cell contributes to the README"
    src = ''.join(cell['source'])
    d = directives(src)
    if 'hide' in d or d.get('include') == 'false': return ''
    if cell['cell_type'] == 'markdown': return src.strip()
    text = ''.join(''.join(o.get('text', '')) if o['output_type'] == 'stream'
                   else ''.join(o.get('data', {}).get('text/markdown', o.get('data', {}).get('text/plain', '')))
                   for o in cell.get('outputs', []))
    code = '\n'.join(l for l in src.splitlines() if not _DIR.match(l.strip())).strip()
    parts = [] if d.get('echo') == 'false' or not code else [f'```python\n{code}\n```']
    if text.strip(): parts.append(text.strip() if d.get('output') == 'asis' else f'```\n{text.strip()}\n```')
    return '\n\n'.join(parts)

def readme_text(nb_path:Path=ROOT/'nbs'/'index.ipynb')->str:
    "README.md's full text, made from the index notebook"
    cells = json.loads(Path(nb_path).read_text())['cells']
    body = '\n\n'.join(t for t in map(cell_md, cells) if t)
    note = '<!-- Generated from nbs/index.ipynb by tools/readme.py: edit the notebook, not this file. -->'
    return f'{note}\n\n{body}\n'

def sidebar_text(nbs:Path=ROOT/'nbs')->str:
    "nbs/sidebar.yml: the home page, then every chapter in order with its number and title"
    from kimchi_course.core import chapter_info
    items = ['      - index.ipynb']
    for nb in sorted(nbs.glob('[0-9]*.ipynb')):
        title = f"{nb.name.split('_')[0]} · {chapter_info(nb)['title']}".replace('"', "'")
        items.append(f'      - text: "{title}"\n        href: {nb.name}')
    return 'website:\n  sidebar:\n    contents:\n' + '\n'.join(items) + '\n'

if __name__ == '__main__':
    targets = {ROOT/'README.md': readme_text(), ROOT/'nbs'/'sidebar.yml': sidebar_text()}
    stale = [p.name for p,want in targets.items() if not p.exists() or p.read_text() != want]
    if '--check' in sys.argv[1:]:
        if stale: sys.exit(f"{', '.join(stale)} out of date with the notebooks: run `python tools/readme.py` and commit")
        print('README.md and nbs/sidebar.yml are current')
    else:
        for p,want in targets.items(): p.write_text(want)
        print('wrote ' + ', '.join(str(p.relative_to(ROOT)) for p in targets))
