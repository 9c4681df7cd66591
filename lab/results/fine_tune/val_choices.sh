#!/bin/bash
# Fine-tuning choices on a validation split of target5-500 (2,000 training images, 500 held out).
set -x
cd /work/main
A=.venv/bin/advconv
T=/work/runs/small/target5-500
S=/work/runs/source5
R=/work/runs/ftval
# scratch ran first (val_scratch.log): $A train --data $T --val_split 500 --run_dir $R/scratch --no-progress
$A train --data $T --val_split 500 --run_dir $R/ft --pretrained $S --no-progress
PYTHONPATH=/tmp/variant .venv/bin/python -m advconv.cli train --data $T --val_split 500 --run_dir $R/ft_wstats --pretrained $S --no-progress
$A train --data $T --val_split 500 --run_dir $R/ft_lr01 --pretrained $S --lr 0.1 --no-progress
$A train --data $T --val_split 500 --run_dir $R/ft_12ep --pretrained $S --epochs 12 --no-progress
$A train --data $T --val_split 500 --run_dir $R/scratch_12ep --epochs 12 --no-progress
