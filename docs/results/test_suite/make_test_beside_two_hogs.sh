#!/bin/bash
# Does the test suite hold on a loaded machine? On a fresh clone of the repository, beside two CPU hogs (one
# busy loop per core): `make test` 5 times in a row, stopping at the first failure. The sharded-eval test's
# 30 runs (sharded_eval_beside_hogs.sh) ran beside it, on the same clone.
#   REPO=path/to/wmplan OUT=folder/for/logs bash make_test_beside_two_hogs.sh
set -u
REPO=${REPO:-$(git rev-parse --show-toplevel)} OUT=${OUT:-$PWD/test_suite_runs} CLONE=${CLONE:-/tmp/wmplan-clone}
mkdir -p "$OUT"
rm -rf "$CLONE" && git clone -q "$REPO" "$CLONE" && cd "$CLONE"
git log -1 --format='clone at %h %s' > "$OUT/summary.txt"
python3 -c 'while True: pass' & H1=$!
python3 -c 'while True: pass' & H2=$!
trap 'kill $H1 $H2 2>/dev/null' EXIT
for i in 1 2 3 4 5; do
  start=$(date +%s)
  make test > "$OUT/make_$i.log" 2>&1; rc=$?
  echo "make test $i rc=$rc $(( $(date +%s) - start )) s: $(tail -1 "$OUT/make_$i.log" | tr -d '=')" >> "$OUT/summary.txt"
  [ $rc -ne 0 ] && exit 1
done
