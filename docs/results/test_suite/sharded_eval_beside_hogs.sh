#!/bin/bash
# The sharded-eval test (two gloo processes under torchrun) 30 times in a row, on the clone that
# make_test_beside_two_hogs.sh made, while its two CPU hogs and its `make test` run beside it. Each run gets
# its own --basetemp, so that the runs never clean up the concurrent suite's temporary folders.
set -u
OUT=${OUT:-$PWD/test_suite_runs} CLONE=${CLONE:-/tmp/wmplan-clone}
cd "$CLONE"
pass=0
for i in $(seq 1 30); do
  rm -rf "/tmp/sharded_bt/$i"; mkdir -p /tmp/sharded_bt
  .venv/bin/python -m pytest -q -p no:cacheprovider --basetemp="/tmp/sharded_bt/$i" \
    "tests/evaluation/test_sharded_eval.py::test_two_gloo_processes_write_the_single_process_files" > "$OUT/sharded_$i.log" 2>&1; rc=$?
  [ $rc -eq 0 ] && pass=$((pass+1))
  echo "sharded $i rc=$rc $(uptime | sed 's/.*load/load/') $(tail -1 "$OUT/sharded_$i.log")" >> "$OUT/sharded.txt"
  rm -rf "/tmp/sharded_bt/$i"
done
echo "sharded passed $pass of 30" >> "$OUT/sharded.txt"
