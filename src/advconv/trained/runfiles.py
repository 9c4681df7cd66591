"""The names of the files in a run directory: one home, so that what training writes is what the
commands that read a run look for."""

LAST = "last.pt"                # the checkpoint after the last finished epoch: what --resume continues
BEST = "best.pt"                # the checkpoint of the epoch that scored best on what the run evaluates
WEIGHTS = "model.safetensors"   # the deployed weights; their inference record beside them in RECORD
RECORD = "model.json"
METRICS_JSON = "metrics.json"   # one row per finished epoch
METRICS_CSV = "metrics.csv"
MANIFEST = "manifest.json"      # what ran, on what, per session, and the outputs other commands wrote

TRAINING = (LAST, BEST, WEIGHTS, RECORD, METRICS_JSON, METRICS_CSV)  # what training writes
TRAINED = (LAST, METRICS_JSON)  # what only a run that finished an epoch leaves

# figures and files other commands write into a run directory, by default
CURVES, AUGMENTED, MISCLASSIFIED = "curves.png", "augmented.png", "misclassified.png"
CONFUSION, PER_CLASS, GRADCAM = "confusion.png", "per_class.png", "gradcam.png"
FIELD, FIELD_GROWTH, RELIABILITY = "rf.png", "rf_growth.png", "reliability.png"
