import os, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent

@pytest.fixture(scope='session', autouse=True)
def smoke_mode(tmp_path_factory):
    "Every test runs in smoke mode"
    os.environ['KIMCHI_MODE'] = 'smoke'

def run_cli(*args, timeout=600, cwd=None):
    "Run the installed `kimchi-course` command; return the CompletedProcess"
    return subprocess.run(['kimchi-course', *map(str, args)], capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          env={**os.environ, 'KIMCHI_MODE': 'smoke', 'PYTHONWARNINGS': 'ignore'})
