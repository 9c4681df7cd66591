#!/bin/bash
# Seed 1 of the input-statistics choice (ft against ft_wstats).
set -x
cd /work/main
T=/work/runs/small/target5-500
S=/work/runs/source5
R=/work/runs/ftval
.venv/bin/advconv train --data $T --val_split 500 --run_dir $R/ft_seed1 --pretrained $S --seed 1 --no-progress
PYTHONPATH=/tmp/variant .venv/bin/python -m advconv.cli train --data $T --val_split 500 --run_dir $R/ft_wstats_seed1 --pretrained $S --seed 1 --no-progress
