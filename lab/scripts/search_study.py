"""The lab's study (issue 52): `advconv search` from the fast recipe on the JPEG data, with the
fast recipe's own net and optimizer, in the search's terms, enqueued as the first trial so that
the table shows where the hand-made choice stands. Resumable: run the same command again.

    python lab/scripts/search_study.py --data ../shared/data/cifar10-jpeg.tar.gz --trials 40
"""

import argparse
from pathlib import Path

from advconv.config import load_config
from advconv.search.study import SearchSettings, open_study, run_search

FAST_IN_SEARCH_TERMS = {  # assignment9 as the space spells it (its C2 closes at 48 channels, not 80)
    "stem": 0, "c1_width": 32, "c1_closes": "stride",
    "c2_width": 48, "c2_kind": "standard", "c2_dilation": 2, "c2_closes": "stride",
    "c3_width": 96, "c3_kind": "depthwise", "c3_dilation": 1, "c3_closes": "stride",
    "c4_width": 128, "c4_kind": "depthwise", "c4_dilation": 1, "activation": "relu",
    "optim.lr": 0.2, "optim.weight_decay": 0.0005, "optim.label_smoothing": 0.2, "batch_size": 512,
}

parser = argparse.ArgumentParser()
parser.add_argument("--data", required=True)
parser.add_argument("--trials", type=int, default=40)
parser.add_argument("--budget-minutes", type=float, default=5.0)
parser.add_argument("--out", default="runs/search-fast5min")  # trial runs stay out of git; lab/results/search gets the table
args = parser.parse_args()

settings = SearchSettings(args.budget_minutes, args.trials, Path(args.out), study="fast5min")
settings.out.mkdir(parents=True, exist_ok=True)
study = open_study(settings)
if not study.trials:
    study.enqueue_trial(FAST_IN_SEARCH_TERMS)
run_search(load_config("fast", {"data.path": args.data}), settings)
