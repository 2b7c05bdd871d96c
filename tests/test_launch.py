"""Chapter 12a's launch on 0, 1 or 2+ GPUs, with the GPU count mocked: which processes `launch_plan` chooses and the
line it prints, that `init_distributed` never calls `set_device` past the GPU count, and what `launch` starts (spawned
processes, never a fork of the notebook). The real launch on this CPU (two spawned processes whose DDP gradients are the
mean) is chapter 12a's run, not repeated here."""
import os
import pytest, torch
import torch.distributed as dist
import torch.multiprocessing as tmp
import kimchi_course.distributed as D

LAUNCH_VARS = ('WORLD_SIZE', 'RANK', 'LOCAL_RANK', 'LOCAL_WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT', 'CUDA_VISIBLE_DEVICES')

@pytest.fixture
def machine(monkeypatch):
    "`machine(n)`: this process sees `n` GPUs; `set_device` and `init_process_group` are recorded (and `set_device` past `n` fails)"
    for k in LAUNCH_VARS: monkeypatch.delenv(k, raising=False)
    calls = dict(set_device=[], backend=[])
    def make(n:int):
        monkeypatch.setattr(torch.cuda, 'is_available', lambda: n > 0)
        monkeypatch.setattr(torch.cuda, 'device_count', lambda: n)
        def set_device(i):
            assert 0 <= int(i) < n, f"set_device({i}) on a machine with {n} GPU(s)"
            calls['set_device'].append(int(i))
        monkeypatch.setattr(torch.cuda, 'set_device', set_device)
        monkeypatch.setattr(dist, 'is_initialized', lambda: False)
        monkeypatch.setattr(dist, 'init_process_group', lambda backend, **kw: calls['backend'].append(backend))
        return calls
    return make

@pytest.mark.parametrize('n, backend, nproc, line', [
    (0, 'gloo', 2, 'no GPU: 2 CPU processes (gloo)'),
    (1, 'gloo', 2, '1 GPU: 2 CPU processes (gloo), the GPU hidden from them; data parallelism needs 2+ GPUs'),
    (2, 'nccl', 2, '2 GPUs: 2 processes, one GPU each (NCCL)'),
    (4, 'nccl', 4, '4 GPUs: 4 processes, one GPU each (NCCL)')])
def test_launch_plan_by_gpu_count(machine, n, backend, nproc, line):
    machine(n)
    p = D.launch_plan()
    assert (p.gpus, p.backend, p.nproc, p.line) == (n, backend, nproc, line)
    assert (p.env.get('CUDA_VISIBLE_DEVICES') == '') == (n < 2) # CPU processes never see a GPU
    assert p.env['KIMCHI_MODE'] == 'smoke' # the notebook's mode goes with them (conftest: smoke)
    cmd = D.torchrun_cmd('kimchi_course.cli', 'train', 'DATA', plan=p)
    assert cmd[1:] == ['-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', str(nproc), '-m', 'kimchi_course.cli', 'train', 'DATA']

@pytest.mark.parametrize('n', [0, 1, 2])
@pytest.mark.parametrize('rank', [0, 1])
def test_init_distributed_never_sets_a_device_past_the_count(machine, monkeypatch, n, rank):
    calls = machine(n)
    monkeypatch.setenv('WORLD_SIZE', '2'); monkeypatch.setenv('LOCAL_WORLD_SIZE', '2')
    monkeypatch.setenv('RANK', str(rank)); monkeypatch.setenv('LOCAL_RANK', str(rank))
    if n == 1: # two processes, one GPU: one clear line, and nothing joined or set
        with pytest.raises(RuntimeError, match=r"2 processes on this machine but 1 GPU\(s\).*CUDA_VISIBLE_DEVICES=''"): D.init_distributed()
        assert calls == dict(set_device=[], backend=[])
    else:
        assert D.init_distributed() == 2
        assert calls == dict(set_device=[rank] if n else [], backend=['nccl' if n else 'gloo'])

def test_one_gpu_plan_gives_cpu_processes(machine, monkeypatch):
    "What a process started by the 1-GPU plan sees: `CUDA_VISIBLE_DEVICES=''` leaves it no GPU, so gloo and no `set_device`"
    machine(1)
    plan = D.launch_plan()
    calls = machine(0 if plan.env['CUDA_VISIBLE_DEVICES'] == '' else 1) # the GPU hidden, as it is in the started process
    monkeypatch.setenv('WORLD_SIZE', '2'); monkeypatch.setenv('LOCAL_RANK', '1')
    D.init_distributed()
    assert calls == dict(set_device=[], backend=['gloo'])

@pytest.mark.parametrize('n', [0, 1, 2])
def test_launch_spawns_the_planned_processes(machine, monkeypatch, n):
    machine(n)
    seen = {}
    def start_processes(fn, args, nprocs, start_method, **kw):
        seen.update(fn=fn, nprocs=nprocs, start_method=start_method, hidden=os.environ.get('CUDA_VISIBLE_DEVICES'), world=args[2])
    monkeypatch.setattr(tmp, 'start_processes', start_processes)
    assert D.launch(D.averaged_gradients) is None # nothing ran, so process 0 left no result
    assert seen == dict(fn=D._process, nprocs=max(n, 2), start_method='spawn', hidden='' if n < 2 else None, world=max(n, 2))
    assert 'CUDA_VISIBLE_DEVICES' not in os.environ # the plan's variables were only there while the processes started

def test_launch_refuses_a_function_it_cant_import(machine):
    machine(0)
    def here(): pass
    here.__module__ = '__main__' # as for a function defined in a notebook
    with pytest.raises(ValueError, match="defined in this notebook.*put it in a module"): D.launch(here)

@pytest.fixture
def restored_environ():
    "`os.environ` as it was, after the test (`_process` sets the launcher's variables, as in a started process)"
    old = dict(os.environ)
    yield
    os.environ.clear(); os.environ.update(old)

def test_process_sets_the_launcher_variables(restored_environ, tmp_path):
    for k in LAUNCH_VARS: os.environ.pop(k, None)
    got = {}
    def fn(x): got.update({k: os.environ.get(k) for k in LAUNCH_VARS[:5]}); return dict(x=x)
    D._process(1, fn, (7,), 2, 12345, tmp_path/'r1.pt')
    assert got == dict(WORLD_SIZE='2', RANK='1', LOCAL_RANK='1', LOCAL_WORLD_SIZE='2', MASTER_ADDR='127.0.0.1')
    assert os.environ['MASTER_PORT'] == '12345' and not (tmp_path/'r1.pt').exists() # only process 0 leaves its result
    D._process(0, fn, (7,), 2, 12345, tmp_path/'r0.pt')
    assert torch.load(tmp_path/'r0.pt', weights_only=True) == dict(x=7)

def test_launch_leaves_no_launcher_variables_behind():
    "After the launch tests, this process is a plain one again (the tests after them train in it)"
    assert not any(k in os.environ for k in LAUNCH_VARS)
