"""Every chapter is Colab-ready and self-contained: a title and description, an 'Open in Colab' badge pointing at
this very notebook in the repository named in pyproject.toml, an install cell that only acts on Colab, the version
stamp, a GPU runtime in the notebook metadata, a questionnaire, no hard-coded local paths, and no file it needs
that the repository or the package doesn't ship."""
import json, re
import pytest
from conftest import ROOT
from kimchi_course import __version__
from kimchi_course.core import colab_url, chapter_info, project_urls

NBS = sorted((ROOT/'nbs').glob('[0-9]*.ipynb'))
INSTALL = "if 'google.colab' in sys.modules:\n"
# Absolute paths that only exist on someone's machine. The data chapter may show a Drive path in its explained example.
LOCAL = re.compile(r"""['"](/content/drive|/content/gdrive|/home/|/Users/|/root/)""")
DATA_FILE = re.compile(r"""['"]([\w./-]+\.(?:jpe?g|png|gif|bmp|webp|zip|tgz|tar|csv|json|pkl|pth|keras|txt))['"]""")
READS = re.compile(r'open\(|\.create\(|\bload(_\w+)?\(|read_|imread|untar|predict\(|get_image_files\(|Path\(')
WRITES = re.compile(r'savefig|export|save|write|to_csv|dump|mkdir|make_|extract|presize|copy|open\(.*[wa]b?[\'"]|\.touch|Image\.new|tempfile|tmp')

TESTS = re.compile(r'^\s*(test_\w+\(|assert\b)')

def cells(nb): return json.loads(nb.read_text())['cells']
def src(c): return ''.join(c['source'])
def used_lines(s):
    "Source lines that use paths, leaving out test assertions (whose strings are hostile inputs, not places)"
    return [l for l in s.splitlines() if not TESTS.match(l) and not l.lstrip().startswith('#')]

@pytest.mark.parametrize('nb', NBS, ids=lambda p: p.name)
def test_colab_ready(nb):
    cs, info = cells(nb), chapter_info(nb)
    assert info['title'] and info['description'], 'first markdown cell needs "# Title" and "> description"'
    badges = re.findall(r'\(https://colab\.research\.google\.com/github/[^)]+\)', ''.join(src(c) for c in cs if c['cell_type'] == 'markdown'))
    assert badges, 'no Open-in-Colab badge'
    assert all(b.strip('()') == colab_url(nb.name) for b in badges), f'badge {badges} should point at {colab_url(nb.name)}'
    code = [src(c) for c in cs if c['cell_type'] == 'code']
    install = [c for c in code if c.startswith(INSTALL) and 'pip' in c]
    assert len(install) == 1, 'one Colab-only install cell (PyPI release, then the tag, then main)'
    repo = project_urls()['Repository'].rstrip('/')
    assert f"'git+{repo}'" in install[0], f'the install cell should fall back to {repo}, the repository in pyproject.toml'
    assert f"KIMCHI_COURSE = '{__version__}'" in '\n'.join(code), f'the install cell should pin this release, {__version__}'
    assert '!pip' not in install[0] and 'raise RuntimeError' in install[0], 'a failed install must stop Run all'
    assert any('version_stamp()' in c for c in code), 'no version stamp'
    meta = json.loads(nb.read_text())['metadata']
    assert meta.get('accelerator') == 'GPU', 'notebook metadata should ask Colab for a GPU runtime'
    assert any(re.search(r'^#+\s*Questionnaire', src(c), re.M) for c in cs if c['cell_type'] == 'markdown'), 'no questionnaire'

@pytest.mark.parametrize('nb', NBS, ids=lambda p: p.name)
def test_no_drive_mount_or_local_paths(nb):
    for c in cells(nb):
        if c['cell_type'] != 'code' or src(c).lstrip().startswith('#| export'): continue  # library code may test for paths
        s = src(c)
        if 'drive.mount(' in s: assert '#| net' in s or '#| notest' in s, 'Google Drive is never mounted in a cell that runs by default'
        if nb.name.startswith('01') and ('#| net' in s or '#| notest' in s): continue  # the data chapter's explained Drive example
        for line in used_lines(s):
            m = LOCAL.search(line)
            assert not m, f'hard-coded local path {m.group(0)!r} in: {line[:120]!r}'

@pytest.mark.parametrize('nb', NBS, ids=lambda p: p.name)
def test_needs_no_unshipped_file(nb):
    "Every data file a notebook names is made by the notebook itself, shipped in the repo, or created by a course function"
    code = [src(c) for c in cells(nb) if c['cell_type'] == 'code' and '#| net' not in src(c) and '#| gpu' not in src(c)]
    lines = [l for c in code for l in used_lines(c)]
    library = ''.join(c for c in code if c.lstrip().startswith('#| export')) # names the chapter's own functions write
    for name in {n for l in lines for n in DATA_FILE.findall(l)}:
        if (ROOT/'nbs'/name).exists() or (ROOT/name).exists(): continue
        if f"'{name}'" in library and WRITES.search(library): continue
        using = [l for l in lines if name in l]
        if not any(READS.search(l) for l in using): continue  # named, never read (e.g. a hostile name in a test)
        assert any(WRITES.search(l) for l in using), \
            f'{nb.name} uses {name!r}, which nothing in the repo ships and the notebook does not create'
