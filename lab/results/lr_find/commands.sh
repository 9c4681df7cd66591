#!/bin/bash
# Issue 39's range tests (alone, timed), issue 40's page latency (alone), then the default and fast
# recipes trained at the range test's suggestion (seed 0, as their tuned runs).
set -x
A=/work/main/.venv/bin/advconv
D=/work/shared/data/cifar10-jpeg.tar.gz
cd /work/runs/lrfind
/usr/bin/time -f "wall %e s" $A lr-find --config /work/main/configs/assignment9.yaml --data $D --output assignment9.png --no-progress 2>&1 | tee assignment9.txt
/usr/bin/time -f "wall %e s" $A lr-find --config /work/main/configs/fast.yaml --data $D --output fast.png --no-progress 2>&1 | tee fast.txt
cd /work/main
.venv/bin/python benchmarks/demo_latency.py 2>&1 | grep -v Warning | tee /work/logs/demo_latency.txt
S1=$(grep -o "one-cycle: --lr [0-9.e-]*" /work/runs/lrfind/assignment9.txt | awk '{print $3}')
S2=$(grep -o "one-cycle: --lr [0-9.e-]*" /work/runs/lrfind/fast.txt | awk '{print $3}')
$A train --data $D --lr $S1 --run_dir /work/runs/lrfind/default_at_suggestion --no-progress
$A train --config configs/fast.yaml --data $D --lr $S2 --run_dir /work/runs/lrfind/fast_at_suggestion --no-progress
