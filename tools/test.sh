#!/usr/bin/env bash
# The project's test command (README "Run the tests"; .ci/run calls it):
#   1. nbdev sync: nbdev-export and nbdev-clean must leave no change,
#   2. every notebook top to bottom with nbdev-test (smoke mode: nbdev-test sets IN_TEST),
#   3. pytest (CLI, packaging, README, docs preview, hostile data). Its summary is the last line.
# The Colab-style full-mode rehearsal is the README's second command (python tools/rehearse_full.py); .ci/run runs
# both. Budget: this command within 10 minutes on a 2-core machine with a warm cache.
# Neither step may change a tracked file or leave a new one: caches and results go under KIMCHI_CACHE.
set -euo pipefail
cd "$(dirname "$0")/.."

# The docs-preview test drives Debian's chromium; install it where we can (root + apt), else that test is skipped.
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "== installing chromium for the docs-preview test"
  (apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium chromium-driver >/dev/null 2>&1; }) \
    || echo "could not install chromium: the docs-preview browser test will be skipped"
fi

snapshot() { git status --porcelain -- kimchi_course nbs; git diff -- kimchi_course nbs | sha1sum; }
echo "== nbdev sync: export + clean must leave no diff"
before=$(snapshot)
nbdev-export
nbdev-clean
after=$(snapshot)
if [ "$before" != "$after" ]; then
  echo "nbdev-export / nbdev-clean changed these files: the library or notebooks were out of sync. Commit the result." >&2
  diff <(echo "$before") <(echo "$after") >&2 || true
  exit 1
fi
echo "in sync"
clean=$(git status --porcelain 2>/dev/null || true)

echo "== nbdev-test: every notebook in smoke mode"
# Two notebooks run at once on a 2-core machine: one torch thread each. With torch's default (a thread per core)
# the four threads fight over two cores and a training step gets several times slower.
start=$SECONDS
OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 nbdev-test --n-workers 2 --timing
echo "nbdev-test took $((SECONDS - start)) s"

untouched() {
  if [ "$(git status --porcelain 2>/dev/null || true)" != "$clean" ]; then
    echo "$1 changed the working tree (tests must write under KIMCHI_CACHE, not into the repository):" >&2
    diff <(echo "$clean") <(git status --porcelain) >&2 || true
    return 1
  fi
}
untouched nbdev-test

echo "== pytest"
status=0
python -m pytest || status=$?
untouched pytest || status=1
exit $status
