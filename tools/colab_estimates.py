#!/usr/bin/env python
"""Issue 25, item 7: the course home's table of Colab estimates, from the chapters themselves. For every chapter
notebook, run its code cells up to and including its estimate cell (the last that calls `colab_time(`) in smoke mode,
in this process, and collect the `ColabTime` that cell ends with; then print `core.colab_estimate_table` of them all
(Markdown, for nbs/index.ipynb) and each chapter's headline. The estimate cells build full-mode settings themselves, so
smoke mode gives the same numbers as full mode; nothing is trained or downloaded (the cells before it are the imports
and the settings). A chapter without an estimate cell is reported and left out.

    python tools/colab_estimates.py                 # every chapter in nbs/
    python tools/colab_estimates.py --nbs nbs --chapters 03_first_model,10a_run_experiments
"""
import argparse, ast, contextlib, io, json, os, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

def chapter_estimate(nb:Path):
    "The `ColabTime` that `nb`'s estimate cell ends with (its earlier code cells run first), or None without one"
    cells = [''.join(c['source']) for c in json.loads(nb.read_text())['cells'] if c['cell_type'] == 'code']
    at = max((i for i, src in enumerate(cells) if 'colab_time(' in src and 'def colab_time' not in src), default=None)
    if at is None or any('def colab_time' in src for src in cells): return None # none, or the chapter that defines it
    ns, here = {'__name__': f'chapter_{nb.stem}'}, os.getcwd()
    os.chdir(nb.parent) # as nbdev and Jupyter run a notebook: in its folder
    try:
        with contextlib.redirect_stdout(io.StringIO()): # what the cells print is theirs, not the table's
            for i, src in enumerate(cells[:at+1]):
                # shell commands and magics don't run here
                src = '\n'.join(l for l in src.splitlines() if not l.lstrip().startswith(('!', '%')))
                tree = ast.parse(src)
                last = tree.body.pop() if i == at and tree.body and isinstance(tree.body[-1], ast.Expr) else None
                exec(compile(tree, f'<{nb.name} cell {i}>', 'exec'), ns)
    finally: os.chdir(here)
    if last is None: raise ValueError(f"{nb.name}: the estimate cell must end with the colab_time(...) expression")
    return eval(compile(ast.Expression(last.value), f'<{nb.name} estimate>', 'eval'), ns)

def main(nbs:Path=ROOT/'nbs', chapters:list=None, verbose:bool=True)->str:
    "The home table of every chapter's estimate (`verbose`: also print each chapter's headline as it goes)"
    os.environ.setdefault('IN_TEST', '1'); os.environ.setdefault('OMP_NUM_THREADS', '1')
    from kimchi_course.colab_time import colab_estimate_table
    times = {}
    for nb in sorted(Path(nbs).glob('[0-9]*.ipynb')):
        if chapters and nb.stem not in chapters: continue
        t0 = time.perf_counter(); t = chapter_estimate(nb)
        if t is None:
            if verbose: print(f"{nb.stem}: no estimate cell")
            continue
        times[nb.stem] = t
        if verbose: print(f"{nb.stem} ({time.perf_counter()-t0:.1f} s): {t.headline()}")
    return colab_estimate_table(times)

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--nbs', default=str(ROOT/'nbs'), help='the folder of chapter notebooks')
    p.add_argument('--chapters', default='', help='comma-separated notebook names (default: all)')
    a = p.parse_args()
    print(); print(main(Path(a.nbs), [c for c in a.chapters.split(',') if c] or None))
