"""1 process against 2 (torchrun, gloo on a CPU; NCCL on GPUs) on the same toy-kimchi data, in one run: wall time,
training images per second and final accuracy of `kimchi-course train`, as a table, with the ratio.

    python tools/bench_ddp.py [--n-per-class 30] [--epochs 2] [--size 32] [--bs 16] [--pretrained]

On a 2-core CPU, two processes share the cores one process already uses, and add a gradient all-reduce per step:
expect a ratio below 1. The point of running it on a CPU is that the 2-process run is correct (chapter 12a)."""
import argparse, json, os, subprocess, sys, tempfile, time
from pathlib import Path

def run(nproc:int, data:Path, out:Path, a)->dict:
    "One `kimchi-course train` run with `nproc` processes; its wall time and report"
    args = ['train', str(data), '--out', str(out), '--epochs', str(a.epochs), '--size', str(a.size), '--presize', str(a.presize),
            '--bs', str(a.bs), '--pretrained' if a.pretrained else '--no-pretrained']
    cmd = [sys.executable, '-m', 'kimchi_course.cli', *args] if nproc == 1 else ['torchrun', '--nproc_per_node', str(nproc), '-m', 'kimchi_course.cli', *args]
    start = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, 'PYTHONWARNINGS': 'ignore'})
    wall = time.perf_counter() - start
    if r.returncode: sys.exit(f"{' '.join(cmd[:5])} … failed:\n{r.stdout[-2000:]}{r.stderr[-2000:]}")
    rep = json.loads((out/'report.json').read_text())
    imgs = rep['n_train']*(rep['settings']['epochs'] + rep['settings']['freeze_epochs'])
    return dict(processes=nproc, wall_s=wall, train_s=rep['seconds'], images_per_s=imgs/rep['seconds'], accuracy=rep['metrics']['accuracy'],
                n_valid=rep['n_valid'])

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--n-per-class', type=int, default=30); p.add_argument('--epochs', type=int, default=2)
    p.add_argument('--size', type=int, default=32); p.add_argument('--presize', type=int, default=40)
    p.add_argument('--bs', type=int, default=16); p.add_argument('--pretrained', action='store_true')
    a = p.parse_args()
    from kimchi_course.toy import make_toy_kimchi
    from kimchi_course.core import version_stamp
    data = make_toy_kimchi(n_per_class=a.n_per_class, seed=42)
    print(version_stamp(), f"· OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    with tempfile.TemporaryDirectory() as t:
        subprocess.run([sys.executable, '-m', 'kimchi_course.cli', 'train', str(data), '--out', f'{t}/warm', '--epochs', '1', '--size', str(a.size),
                        '--presize', str(a.presize), '--bs', str(a.bs), '--no-pretrained'], capture_output=True) # builds the presize cache first
        rows = [run(n, data, Path(t)/f'p{n}', a) for n in (1, 2)]
    print(f"toy-kimchi, {a.n_per_class} images per class, {a.size} px, {a.epochs}+1 epochs, batch size {a.bs} per process")
    print(f"{'processes':>9}  {'wall s':>7}  {'train s':>7}  {'images/s':>8}  {'accuracy':>8}  {'valid images':>12}")
    for r in rows: print(f"{r['processes']:>9}  {r['wall_s']:>7.1f}  {r['train_s']:>7.1f}  {r['images_per_s']:>8.1f}  {r['accuracy']:>8.4f}  {r['n_valid']:>12}")
    print(f"2 processes vs 1: {rows[1]['images_per_s']/rows[0]['images_per_s']:.2f}× the training images/s, {rows[0]['wall_s']/rows[1]['wall_s']:.2f}× the speed in wall time")

if __name__ == '__main__': main()
