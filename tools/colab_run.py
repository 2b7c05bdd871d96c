#!/usr/bin/env python
"""Run one notebook the way Colab's *Run all* does (issue 25): a real Jupyter kernel (nbclient + ipykernel), every
code cell in order whatever its nbdev directives say (`#| eval: false`, `#| notest`, `#| hide` run too), except the
cells whose directives name one of `skip` (by default `gpu` and `net`): those are blanked in a copy of the notebook,
so cell numbers stay the notebook's own (counted from 0).

The kernel starts with the startup file `kernel_home` writes (an IPython profile in a folder the harness owns, passed
as `IPYTHONDIR`):
- a stand-in `google.colab` module in `sys.modules`, so each chapter's install cell takes its Colab branch;
- on Python < 3.12, the DeprecationWarning that Python ≥ 3.12 (Colab runs 3.13) raises when a multi-threaded process
  calls `os.fork()`, as when a kernel forks DataLoader workers.

    python tools/colab_run.py nbs/00_core.ipynb --cwd /tmp/content --result /tmp/r.json [--upto 4] [--skip gpu,net]

The result (JSON): `{ok, seconds, cells, cell, error, install, probe}`; `cell` is the index of the first failing cell
and `error` its one line (`AssertionError: ...`). The harness is tools/rehearse_full.py."""
import os, re, sys, json, time, argparse, tempfile
from pathlib import Path

INSTALL_START = "if 'google.colab' in sys.modules:" # the first line of every chapter's install cell
PROBE = '__rehearsal_probe__' # the line the probe cell prints before its JSON
PROBE_SRC = f"""import sys as _s, json as _j, resource as _r
_t = _s.modules.get('torch'); _g = bool(_t) and _t.cuda.is_available()
print({PROBE!r}, _j.dumps(dict(rss_MB=round(_r.getrusage(_r.RUSAGE_SELF).ru_maxrss/1024),
      gpu_MB=round(_t.cuda.max_memory_allocated()/2**20) if _g else None, gpu=_t.cuda.get_device_name() if _g else None)))"""

STARTUP = '''# Written by tools/colab_run.py: the start of a Colab-style rehearsal kernel
def _colab_rehearsal():
    import os, sys, types, warnings, importlib.machinery
    if os.environ.get('KIMCHI_REHEARSAL_COLAB', '1') == '1':
        m = types.ModuleType('google.colab', "Stand-in for Colab's own module (tools/colab_run.py)")
        m.__spec__ = importlib.machinery.ModuleSpec('google.colab', None) # importlib.util.find_spec finds it, as on Colab
        sys.modules['google.colab'] = m # what the chapters' install cells and in_colab() look for
    if sys.version_info < (3, 12) and hasattr(os, 'fork'):
        fork = os.fork
        def threads():
            try:
                with open('/proc/self/status') as f: return int(next(l for l in f if l.startswith('Threads:')).split()[1])
            except Exception: return 1
        def _fork():
            "os.fork, warning as Python >= 3.12 does when the process has more than one thread"
            if threads() > 1:
                warnings.warn(f"This process (pid={os.getpid()}) is multi-threaded, use of fork() may lead to deadlocks "
                              "in the child.", DeprecationWarning, stacklevel=2)
            return fork()
        os.fork = _fork
_colab_rehearsal()
del _colab_rehearsal
'''

def directives(src:str)->set:
    "The nbdev directive names in a cell's leading comment lines (`#| eval: false` -> 'eval', `#| gpu` -> 'gpu')"
    out = set()
    for line in src.splitlines():
        s = line.strip()
        if not s: continue
        if not s.startswith('#'): break
        m = re.match(r'#\|\s*([\w-]+)', s)
        if m: out.add(m.group(1))
    return out

def install_cell(nb)->int:
    "Index of the notebook's install cell: the code cell whose source starts with `INSTALL_START`"
    for i,c in enumerate(nb['cells']):
        if c['cell_type'] == 'code' and ''.join(c['source']).lstrip().startswith(INSTALL_START): return i
    raise ValueError(f"no install cell (a code cell starting {INSTALL_START!r}): every chapter needs one near the top")

def colab_copy(
    nb:dict, # a notebook, as `nbformat.read` or `json.load` give it (not changed)
    skip=('gpu', 'net'), # blank the code cells whose directives name any of these
    upto:int=None, # keep cells 0..upto only (the install check stops after the install cell)
    probe:bool=False, # append a cell that prints the kernel's peak memory (`PROBE_SRC`)
)->tuple:
    "A copy of `nb` for Colab-style execution, and the indices of the cells it blanked"
    import nbformat
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    if upto is not None: nb.cells = nb.cells[:upto+1]
    skipped = []
    for i,c in enumerate(nb.cells):
        if c.cell_type != 'code': continue
        c.outputs, c.execution_count = [], None
        hit = sorted(directives(c.source) & set(skip))
        if hit: c.source = f"# skipped by the rehearsal: #| {', #| '.join(hit)}"; skipped.append(i)
    if probe: nb.cells.append(nbformat.v4.new_code_cell(PROBE_SRC))
    return nb, skipped

_ANSI = re.compile(r'\x1b\[[0-9;]*[A-Za-z]') # terminal colour codes (pip colours its messages)

def error_line(ename:str, evalue:str, limit:int=300)->str:
    "One line for an exception: `ValueError: message`, the message's first lines joined (test_eq's `==:` shows both sides)"
    lines = [l.strip() for l in _ANSI.sub('', str(evalue or '')).strip().splitlines() if l.strip()]
    msg = ' '.join(lines[:3] if lines and lines[0].endswith(':') else lines[:1])
    return f"{ename}: {msg}"[:limit] if msg else str(ename)[:limit]

def _text(cell)->str:
    "The stream text a cell printed"
    return ''.join(o.get('text', '') for o in cell.get('outputs', []) if o.get('output_type') == 'stream')

def kernel_home(folder:Path)->Path:
    "An IPython home (for `IPYTHONDIR`) whose startup file gives kernels the stand-in `google.colab` (see `STARTUP`)"
    f = Path(folder)/'profile_default'/'startup'/'00-colab-rehearsal.py'
    f.parent.mkdir(parents=True, exist_ok=True)
    if not f.exists() or f.read_text() != STARTUP: f.write_text(STARTUP)
    return Path(folder)

def run_notebook(
    path:Path, # the notebook
    cwd:Path, # the kernel's working folder (Colab's is /content: the repository's files are not there)
    timeout:int=300, # seconds for the whole notebook
    skip=('gpu', 'net'), # directives whose cells are blanked
    upto:int=None, # run cells 0..upto only
    probe:bool=False, # also report the kernel's peak memory
    pidfile:Path=None, # write the kernel's process group id here (the harness kills it if this process hangs)
)->dict:
    "Execute `path` cell by cell in a fresh kernel; the result dict (see the module docstring)"
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
    nb, skipped = colab_copy(nbformat.read(path, as_version=4), skip, upto, probe)
    try: inst = install_cell(nb)
    except ValueError: inst = None
    n = len(nb.cells) - probe
    Path(cwd).mkdir(parents=True, exist_ok=True)
    client = NotebookClient(nb, timeout=timeout, kernel_name='python3', allow_errors=False, shutdown_kernel='immediate',
                            resources={'metadata': {'path': str(cwd)}}, startup_timeout=120)
    res = dict(ok=False, seconds=0.0, cells=n, cell=None, error='', skipped=skipped, install=None, probe=None)
    t0 = time.monotonic(); i = 0
    try:
        with client.setup_kernel():
            t0 = time.monotonic() # the chapter's time starts once its kernel is up (startup has its own timeout)
            pgid = getattr(getattr(client.km, 'provisioner', None), 'pgid', None)
            if pidfile and pgid: Path(pidfile).write_text(str(pgid))
            try:
                for i in range(n):
                    c = nb.cells[i]
                    if c.cell_type != 'code' or i in skipped: continue
                    left = timeout - (time.monotonic() - t0)
                    if left <= 0: raise CellTimeoutError('out of time')
                    client.timeout = max(1, int(left))
                    client.execute_cell(c, i)
                    if i == inst: res['install'] = _text(c).strip()
                res['ok'] = True
            except CellExecutionError as e:
                print(f'cell {i} failed:\n{_ANSI.sub("", str(e))[-6000:]}', file=sys.stderr) # the traceback, for the log
                res.update(cell=i, error=error_line(e.ename, e.evalue))
                if i == inst: res['install'] = _text(nb.cells[i]).strip()
            except CellTimeoutError:
                res.update(cell=i, error=f'TimeoutError: the chapter was still running after {timeout} s (cell {i} did not return)')
            if probe and not res['error'].startswith(('TimeoutError', 'DeadKernelError')):
                try:
                    client.timeout = 60; client.execute_cell(nb.cells[-1], len(nb.cells)-1)
                    line = next(l for l in _text(nb.cells[-1]).splitlines() if l.startswith(PROBE))
                    res['probe'] = json.loads(line[len(PROBE):])
                except Exception as e: res['probe'] = dict(error=repr(e)[:200])
    except DeadKernelError as e:
        res.update(cell=i, error=f'DeadKernelError: the kernel died in cell {i} ({e})'[:300])
    except Exception as e: # the kernel didn't start, or nbclient failed
        res.update(cell=i, error=error_line(type(e).__name__, str(e)))
    res['seconds'] = round(time.monotonic() - t0, 1)
    return res

def main(argv=None)->int:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('notebook', type=Path)
    p.add_argument('--cwd', type=Path, default=None, help="the kernel's working folder (default: a new temporary folder)")
    p.add_argument('--result', type=Path, default=None, help='write the result JSON here (default: print it)')
    p.add_argument('--timeout', type=int, default=300, help='seconds for the whole notebook')
    p.add_argument('--skip', default='gpu,net', help="comma-separated directives whose cells are blanked ('' for none)")
    p.add_argument('--upto', type=int, default=None, help='run cells 0..UPTO only')
    p.add_argument('--upto-install', action='store_true', help="run up to and including the notebook's install cell")
    p.add_argument('--probe', action='store_true', help="also report the kernel's peak memory (and GPU memory)")
    p.add_argument('--pidfile', type=Path, default=None, help="write the kernel's process group id here")
    a = p.parse_args(argv)
    upto = a.upto
    if a.upto_install:
        import nbformat
        upto = install_cell(nbformat.read(a.notebook, as_version=4))
    cwd = a.cwd or Path(tempfile.mkdtemp(prefix='content-'))
    res = run_notebook(a.notebook, cwd, a.timeout, tuple(s for s in a.skip.split(',') if s), upto, a.probe, a.pidfile)
    text = json.dumps(res, ensure_ascii=False)
    if a.result: a.result.write_text(text, encoding='utf-8')
    else: print(text)
    return 0 if res['ok'] else 1

if __name__ == '__main__': sys.exit(main())
