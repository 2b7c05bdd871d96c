"""Cold-start benchmark: `kimchi-course predict model.pt one.jpg` against `python -c "import fastai.vision.all"`.

Each run is a fresh interpreter (a subprocess), the two commands alternate so both see the same machine load, and one
untimed run of each goes first so both read their files from the OS cache. Prints every time, both medians and the
ratio. Without --model it saves a resnet18 learner on a tiny toy-kimchi with `model_file.save_model` (untrained: the
weights don't change the time) in a temporary folder.

    python tools/bench_predict.py [--repeats 7] [--model kimchi-demo/model.pt --photo some.jpg]
"""
import argparse, os, shutil, statistics, subprocess, sys, tempfile, time
from pathlib import Path

GOAL = 0.40 # issue 17: a cold predict in at most 40% of the time of importing fastai

def make_model(dest:Path)->tuple:
    "A model file and a photo to predict: a resnet18 learner on a tiny toy-kimchi, saved with `save_model`"
    os.environ.setdefault('KIMCHI_CACHE', str(dest/'cache')) # leave ~/.cache alone
    from kimchi_course.core import course_settings
    from kimchi_course.pretraining import course_learner
    from kimchi_course.toy import make_toy_kimchi
    from kimchi_course.dataloaders import kimchi_dls
    from kimchi_course.model_file import save_model
    toy = make_toy_kimchi(dest/'toy', n_per_class=2, seed=0)
    s = course_settings(mode='smoke', env={}, pretrained=False) # random weights: the benchmark times loading and one forward pass
    learn = course_learner(kimchi_dls(toy, size=s.size, presize=s.presize, bs=4, seed=0, workers=0), s)
    return save_model(learn, dest/'model.pt'), sorted(toy.rglob('*.jpg'))[0]

def predict_cmd(model:Path, photo:Path)->list:
    "The installed `kimchi-course` script, or the same `main` through this interpreter"
    exe = shutil.which('kimchi-course')
    head = [exe] if exe else [sys.executable, '-c', 'import sys; from kimchi_course.cli import main; sys.exit(main())']
    return head + ['predict', str(model), str(photo)]

def seconds(cmd:list)->float:
    "Wall time of one run of `cmd`; a failed run stops the benchmark"
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, 'PYTHONWARNINGS': 'ignore'})
    dt = time.perf_counter() - t
    if r.returncode: sys.exit(f"bench_predict: {' '.join(cmd)} failed ({r.returncode}):\n{r.stderr[-2000:]}")
    return dt

def bench(model:Path, photo:Path, repeats:int=7)->dict:
    "Alternate cold runs of predict and of the fastai import; both medians and their ratio"
    cmds = dict(predict=predict_cmd(model, photo), fastai=[sys.executable, '-c', 'import fastai.vision.all'])
    for c in cmds.values(): seconds(c) # untimed: warm the OS file cache for both
    times = {k:[] for k in cmds}
    for _ in range(repeats):
        for k,c in cmds.items(): times[k].append(seconds(c))
    med = {k:statistics.median(v) for k,v in times.items()}
    return dict(times=times, median=med, ratio=med['predict']/med['fastai'])

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--repeats', type=int, default=7, help='timed runs of each command (default: 7)')
    p.add_argument('--model', type=Path, help='a model file written by save_model (default: a tiny one, made here)')
    p.add_argument('--photo', type=Path, help='the photo to predict (needed with --model)')
    a = p.parse_args()
    if (a.model is None) != (a.photo is None): p.error('give --model and --photo together, or neither')
    with tempfile.TemporaryDirectory() as tmp:
        model,photo = (a.model,a.photo) if a.model else make_model(Path(tmp))
        r = bench(model, photo, a.repeats)
    try: load = f"{os.getloadavg()[0]:.1f}"
    except (OSError, AttributeError): load = 'unknown'
    print(f"cold runs, {a.repeats} each, alternating; load average before the last run: {load}")
    for k,v in r['times'].items(): print(f"  {k:>8}: median {r['median'][k]:.2f} s  (runs: {', '.join(f'{t:.2f}' for t in v)})")
    print(f"  predict / import fastai.vision.all = {r['ratio']:.2f} (goal: at most {GOAL:.2f}: {'met' if r['ratio'] <= GOAL else 'NOT met'})")

if __name__ == '__main__': main()
