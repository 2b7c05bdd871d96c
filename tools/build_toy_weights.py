#!/usr/bin/env python
"""Build the toy-pretrained backbone from scratch and write it to `weights/` as the committed file (issue 15).

The same function every chapter calls (`kimchi_course.pretraining.toy_pretrained`) trains it in a throw-away cache, with
`BUILD_THREADS` torch threads, so the same arguments give the same weights. Beside `<name>.pth` (fp16) it writes
`<name>.json`: the arguments, the file's SHA-256 and the source task's fingerprint. `toy_pretrained` uses the file only
while all three still match the code; otherwise it builds the backbone itself and says the file is stale.

    python tools/build_toy_weights.py                      # the defaults the course uses (resnet18, 64 px, seed 0)
    python tools/build_toy_weights.py --size 16 --n-per-class 1 --epochs 1 --out /tmp/w   # a small-scale check"""
import os, sys, time, argparse, tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

def main(argv=None)->int:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--arch', default='resnet18'); p.add_argument('--size', type=int, default=64)
    p.add_argument('--seed', type=int, default=0); p.add_argument('--n-per-class', type=int, default=250)
    p.add_argument('--epochs', type=int, default=3); p.add_argument('--bs', type=int, default=64)
    p.add_argument('--lr', type=float, default=3e-3)
    p.add_argument('--out', type=Path, default=ROOT/'weights', help='folder for the .pth and its .json manifest (default: weights/)')
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix='toy-weights-') as tmp:
        os.environ['KIMCHI_CACHE'] = f'{tmp}/cache'; os.environ['KIMCHI_TOY_WEIGHTS'] = f'{tmp}/none' # build, never copy
        from kimchi_course.pretraining import toy_pretrained, ship_toy_weights
        t = time.perf_counter()
        built = toy_pretrained(a.arch, size=a.size, seed=a.seed, n_per_class=a.n_per_class, epochs=a.epochs, bs=a.bs, lr=a.lr)
        f = ship_toy_weights(built, a.out)
    print(f"wrote {f} ({f.stat().st_size/1e6:.1f} MB) and {f.with_suffix('.json').name} in {time.perf_counter()-t:.0f} s")
    return 0

if __name__ == '__main__': sys.exit(main())
