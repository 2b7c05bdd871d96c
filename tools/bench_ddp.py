"""1 process against several (torchrun) on the same toy-kimchi data, in one run: wall time, training images per second
and final accuracy of `kimchi-course train`, as a table, with the ratio. The processes are the ones chapter 12a's
`launch_plan` chooses, and it prints its line: one per GPU (NCCL) on 2+ GPUs; else 2 CPU processes (gloo), with the
GPU of a 1-GPU machine hidden from both runs, so that the two sides compare CPU with CPU.

    python tools/bench_ddp.py [--n-per-class 30] [--epochs 2] [--size 32] [--bs 16] [--pretrained]

On a 2-core CPU, two processes share the cores one process already uses, and add a gradient all-reduce per step:
expect a ratio below 1. The point of running it on a CPU is that the 2-process run is correct (chapter 12a)."""
import argparse, json, os, subprocess, sys, tempfile, time
from pathlib import Path
from kimchi_course.distributed import torchrun_cmd

def run(nproc:int, data:Path, out:Path, a, plan)->dict:
    "One `kimchi-course train` run with `nproc` processes (1, or `plan`'s); its wall time and report"
    args = ['train', str(data), '--out', str(out), '--epochs', str(a.epochs), '--size', str(a.size), '--presize', str(a.presize),
            '--bs', str(a.bs), '--pretrained' if a.pretrained else '--no-pretrained']
    cmd = [sys.executable, '-m', 'kimchi_course.cli', *args] if nproc == 1 else torchrun_cmd('kimchi_course.cli', *args, plan=plan)
    start = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env(plan, nproc))
    wall = time.perf_counter() - start
    if r.returncode: sys.exit(f"{' '.join(cmd[:5])} … failed:\n{r.stdout[-2000:]}{r.stderr[-2000:]}")
    rep = json.loads((out/'report.json').read_text())
    imgs = rep['n_train']*(rep['settings']['epochs'] + rep['settings']['freeze_epochs'])
    return dict(processes=nproc, wall_s=wall, train_s=rep['seconds'], images_per_s=imgs/rep['seconds'], accuracy=rep['metrics']['accuracy'],
                n_valid=rep['n_valid'])

def env(plan, nproc:int)->dict:
    "The environment of a run: `plan`'s (GPU hidden on the CPU path), less its thread count for the 1-process run"
    return {**os.environ, **{k:v for k,v in plan.env.items() if nproc > 1 or k != 'OMP_NUM_THREADS'}, 'PYTHONWARNINGS': 'ignore'}

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--n-per-class', type=int, default=30); p.add_argument('--epochs', type=int, default=2)
    p.add_argument('--size', type=int, default=32); p.add_argument('--presize', type=int, default=40)
    p.add_argument('--bs', type=int, default=16); p.add_argument('--pretrained', action='store_true')
    a = p.parse_args()
    from kimchi_course.toy import make_toy_kimchi
    from kimchi_course.core import version_stamp
    from kimchi_course.distributed import launch_plan
    data, plan = make_toy_kimchi(n_per_class=a.n_per_class, seed=42), launch_plan()
    print(version_stamp(), f"· OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}\n{plan.line}")
    with tempfile.TemporaryDirectory() as t:
        subprocess.run([sys.executable, '-m', 'kimchi_course.cli', 'train', str(data), '--out', f'{t}/warm', '--epochs', '1', '--size', str(a.size),
                        '--presize', str(a.presize), '--bs', str(a.bs), '--no-pretrained'], capture_output=True, env=env(plan, 1)) # builds the presize cache first
        rows = [run(n, data, Path(t)/f'p{n}', a, plan) for n in (1, plan.nproc)]
    print(f"toy-kimchi, {a.n_per_class} images per class, {a.size} px, {a.epochs}+1 epochs, batch size {a.bs} per process")
    print(f"{'processes':>9}  {'wall s':>7}  {'train s':>7}  {'images/s':>8}  {'accuracy':>8}  {'valid images':>12}")
    for r in rows: print(f"{r['processes']:>9}  {r['wall_s']:>7.1f}  {r['train_s']:>7.1f}  {r['images_per_s']:>8.1f}  {r['accuracy']:>8.4f}  {r['n_valid']:>12}")
    print(f"{plan.nproc} processes vs 1: {rows[1]['images_per_s']/rows[0]['images_per_s']:.2f}× the training images/s, {rows[0]['wall_s']/rows[1]['wall_s']:.2f}× the speed in wall time")

if __name__ == '__main__': main()
