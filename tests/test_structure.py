"""The library's shape (issue 14): one module per chapter notebook, imports only of earlier chapters (at any depth,
function-level imports included), no import cycle, small modules, each public name defined once, the modules that
`predict` and the app need have no fastai import (read from their source: the one run-time check, `kimchi-course predict`
in a fresh interpreter, is in tests/test_predict_cli.py), and importing `core` changes no global state."""
import ast, json, re, subprocess, sys
from collections import defaultdict
from pathlib import Path
import pytest
from conftest import ROOT

PKG, NBS = ROOT/'kimchi_course', sorted((ROOT/'nbs').glob('*.ipynb'))
MAX_LINES = 450
FASTAI_FREE = ('core', 'open_data', 'archives', 'scan', 'crop_boxes', 'model_file', 'app') # PLAN.md: `predict` and the app import no fastai
DIRECTIVE = re.compile(r'^\s*#\s*\|\s*(\w+)\s*(.*?)\s*$')
EXPORTS = {'export', 'exports', 'exporti'}

def directives(cell:dict)->list:
    "The `#| name args` lines at the top of a code cell, as `(name, args)`"
    out = []
    for line in ''.join(cell['source']).splitlines():
        m = DIRECTIVE.match(line)
        if m: out.append((m[1], m[2]))
        elif line.strip(): break
    return out

def exported_modules(nb:Path)->set:
    "The modules `nb` exports cells to: its `default_exp`, or the module an `#| export NAME` cell names"
    cells = [c for c in json.loads(nb.read_text(encoding='utf-8'))['cells'] if c['cell_type'] == 'code']
    ds = [d for c in cells for d in directives(c)]
    default = next((a.split()[0] for n,a in ds if n == 'default_exp' and a), None)
    return {(a.split()[0] if a else default) for n,a in ds if n in EXPORTS}

def module_notebooks()->dict:
    "`{module: [notebooks that export to it]}` from every notebook in nbs/"
    out = defaultdict(list)
    for nb in NBS:
        for m in exported_modules(nb): out[m].append(nb.name)
    return dict(out)

def modules()->list:
    "The library's generated modules (not `__init__` or nbdev's `_modidx`)"
    return sorted(p.stem for p in PKG.glob('*.py') if not p.stem.startswith('_'))

def tree(m:str)->ast.Module: return ast.parse((PKG/f'{m}.py').read_text(encoding='utf-8'))

def _course_module(name:str, level:int)->str:
    "The `kimchi_course` module `name` refers to (a relative import when `level`), else None"
    parts = (name or '').split('.')
    if not level:
        if parts[0] != 'kimchi_course': return None
        parts = parts[1:]
    return parts[0] if parts and parts[0] else None

def imported(node)->set:
    "Course modules an `import` / `from ... import` statement names, and other top-level packages as `'!pkg'`"
    if isinstance(node, ast.Import):
        return {_course_module(a.name, 0) or ('!'+a.name.split('.')[0] if not a.name.startswith('kimchi_course') else None) for a in node.names} - {None}
    if node.level == 0 and not (node.module or '').startswith('kimchi_course'): return {'!'+node.module.split('.')[0]}
    m = _course_module(node.module, node.level)
    if m: return {m}
    return {a.name for a in node.names if (PKG/f'{a.name}.py').exists()} # `from . import core`, `from kimchi_course import core`

def import_nodes(t:ast.AST, top_only:bool=False):
    "Every import statement in `t`; with `top_only`, only those run when the module is imported (not in function bodies)"
    todo = list(ast.iter_child_nodes(t))
    while todo:
        n = todo.pop()
        if top_only and isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)): continue
        if isinstance(n, (ast.Import, ast.ImportFrom)): yield n
        todo += ast.iter_child_nodes(n)

def import_graph(top_only:bool=False)->dict:
    "`{module: {course modules it imports}}`, function-level imports included unless `top_only`"
    return {m: {d for n in import_nodes(tree(m), top_only) for d in imported(n) if not d.startswith('!')} - {m} for m in modules()}

def chapter_order()->dict:
    "`{module: position of its notebook in file-name order}`"
    return {m: min(NBS.index(ROOT/'nbs'/nb) for nb in nbs) for m,nbs in module_notebooks().items()}

def test_one_module_per_notebook():
    many = {nb.name: sorted(ms) for nb in NBS if len(ms := exported_modules(nb)) > 1}
    assert not many, f'notebooks that export to more than one module: {many}'

def test_every_module_from_one_notebook():
    src = module_notebooks()
    shared = {m: nbs for m,nbs in src.items() if len(nbs) > 1}
    assert not shared, f'modules exported by more than one notebook: {shared}'
    orphans = [m for m in modules() if m not in src]
    assert not orphans, f'modules no notebook exports (stale generated files?): {orphans}'

def test_imports_follow_the_chapters():
    "A module imports only modules of earlier chapters, also inside functions (so every chain of imports does too)"
    order, graph = chapter_order(), import_graph()
    unknown = {m: sorted(d for d in ds if d not in order) for m,ds in graph.items() if any(d not in order for d in ds)}
    assert not unknown, f'imports of modules no notebook exports: {unknown}'
    later = {m: sorted(d for d in ds if order[d] > order[m]) for m,ds in graph.items() if m in order and any(order[d] > order[m] for d in ds)}
    assert not later, f'modules that import a later chapter: {later}'

def find_cycle(graph:dict)->list:
    "One import cycle in `graph` as a list of modules (first == last), or `[]`"
    state, stack = {}, []
    def visit(m):
        state[m] = 'open'; stack.append(m)
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 'open': return stack[stack.index(d):] + [d]
            if d not in state and (c := visit(d)): return c
        state[m] = 'done'; stack.pop()
        return []
    for m in sorted(graph):
        if m not in state and (c := visit(m)): return c
    return []

def test_find_cycle_finds_one():
    assert find_cycle({'a': {'b'}, 'b': {'c'}, 'c': {'a'}}) == ['a', 'b', 'c', 'a']
    assert find_cycle({'a': {'b'}, 'b': set(), 'c': {'a', 'b'}}) == []

def test_no_import_cycle():
    c = find_cycle(import_graph())
    assert not c, 'import cycle: ' + ' -> '.join(c)

@pytest.mark.parametrize('m', modules())
def test_module_size(m):
    n = len((PKG/f'{m}.py').read_text(encoding='utf-8').splitlines())
    assert n <= MAX_LINES, f'{m}.py has {n} lines (at most {MAX_LINES}): split its chapter'

def public_names(m:str)->list:
    "The names in `m.__all__`, read without importing `m`"
    for n in tree(m).body:
        if isinstance(n, ast.Assign) and any(getattr(t, 'id', None) == '__all__' for t in n.targets): return ast.literal_eval(n.value)
    return []

def test_no_public_name_defined_twice():
    where = defaultdict(list)
    for m in modules():
        for n in public_names(m): where[n].append(m)
    twice = {n: ms for n,ms in where.items() if len(ms) > 1}
    assert not twice, f'public names defined in more than one module: {twice}'

@pytest.mark.parametrize('m', FASTAI_FREE)
def test_fastai_free_source(m):
    "Neither the module nor any course module it imports at import time has a top-level fastai import"
    assert (PKG/f'{m}.py').exists(), f'{m}.py is missing'
    top, seen, todo = import_graph(top_only=True), set(), [m]
    while todo:
        x = todo.pop()
        if x in seen or not (PKG/f'{x}.py').exists(): continue
        seen.add(x); todo += top.get(x, ())
        bad = [ast.unparse(n) for n in import_nodes(tree(x), top_only=True) if '!fastai' in imported(n)]
        assert not bad, f'{m} imports fastai when imported (via {x}.py: {bad}); import it inside the function that needs it'

IMPORT_CHECK = '''
import json, warnings, torch
before = ([repr(f) for f in warnings.filters], torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
import kimchi_course.core
after = ([repr(f) for f in warnings.filters], torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
print(json.dumps(dict(same_filters=before[0] == after[0], cudnn=[before[1:], after[1:]])))
'''

def test_importing_core_changes_no_global_state():
    "What importing `core` in a fresh interpreter did to the warning filters and cuDNN's flags"
    p = subprocess.run([sys.executable, '-c', IMPORT_CHECK], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert p.returncode == 0, f'importing kimchi_course.core failed: {p.stderr[-2000:]}'
    r = json.loads(p.stdout.strip().splitlines()[-1])
    assert r['same_filters'], 'importing kimchi_course.core changed the warning filters; call quiet_known_warnings() explicitly instead'
    assert r['cudnn'][0] == r['cudnn'][1], f'importing kimchi_course.core changed cuDNN flags (deterministic, benchmark): {r["cudnn"]}'
