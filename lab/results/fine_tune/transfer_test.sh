#!/bin/bash
# Issue 39's measurements, in order: the range tests (timed alone), the transfer runs on the test
# sets, then the default and fast recipes trained at the suggested lr.
set -x
cd /work/main
A=.venv/bin/advconv
D=../shared/data/cifar10-jpeg.tar.gz
S=/work/runs/small
R=/work/runs/ft_test
cd /work/runs/lrfind
/usr/bin/time -f "wall %e s" $A lr-find --config /work/main/configs/assignment9.yaml --data /work/shared/data/cifar10-jpeg.tar.gz --output assignment9.png --no-progress
/usr/bin/time -f "wall %e s" $A lr-find --config /work/main/configs/fast.yaml --data /work/shared/data/cifar10-jpeg.tar.gz --output fast.png --no-progress
cd /work/main
for n in 100 500; do
  $A train --data $S/target5-$n --run_dir $R/scratch$n --no-progress
  $A train --data $S/target5-$n --run_dir $R/ft$n --pretrained /work/runs/source5 --no-progress
  $A train --data $S/target5-$n --run_dir $R/ft${n}_12ep --pretrained /work/runs/source5 --epochs 12 --no-progress
done
$A train --data $S/digits-100 --hflip 0 --run_dir $R/digits_scratch --no-progress
$A train --data $S/digits-100 --hflip 0 --run_dir $R/digits_ft --pretrained stem8.assignment9 --no-progress
