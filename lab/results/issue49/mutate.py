"""Break the code as issue 49 describes each weak test, see the rewritten test fail, restore.

    python lab/results/issue49/mutate.py > lab/results/issue49/mutations.log
"""
import pathlib
import subprocess
import sys

CASES = [  # (what the break does, [(file, old, new), ...], the test that must fail)
    ("lr-find ignores pretrained",
     [("src/advconv/lrfind.py", "    weights = starting_weights(cfg)\n",
       "    cfg.pretrained = None\n    weights = starting_weights(cfg)\n")],
     "tests/test_lrfind.py::test_the_api_takes_a_config_and_starting_weights"),
    ("the teacher's targets never reach the loader",
     [("src/advconv/train.py", "rt.rank, rt.world_size, rt.device, targets)", "rt.rank, rt.world_size, rt.device, None)")],
     "tests/test_distill.py::test_a_student_trains_on_the_teachers_targets"),
    ("fast: Muon drops out",
     [("src/advconv/optim.py", 'if o.name == "muon" else set()', "if False else set()"),
      ("src/advconv/optim.py", '    if o.name == "muon":\n', "    if False:\n")],
     "tests/test_train.py::test_fast_recipe_runs_in_fp32"),
    ("fast: whitening drops out",
     [("src/advconv/train.py", "    if data.whiten_filters is not None:", "    if False:")],
     "tests/test_train.py::test_fast_recipe_runs_in_fp32"),
    ("fast: alternating flips drop out",
     [("src/advconv/loaders.py", "                if self.aug.alternate_flip:", "                if False:")],
     "tests/test_train.py::test_fast_recipe_runs_in_fp32"),
    ("predict resizes files wrong",
     [("src/advconv/inference.py", "decode_image(Path(item), str(item), size))", "decode_image(Path(item), str(item), size + 8))")],
     "tests/test_inference.py::test_predict_any_size_and_format"),
    ("Grad-CAM ignores the class it is asked for",
     [("src/advconv/explain.py", "gradcam_heatmaps(model, images, classes_to_explain, stats, target_layer)",
       "gradcam_heatmaps(model, images, [0] * len(images), stats, target_layer)")],
     "tests/test_explain.py::test_gradcam_overlays_have_image_shape"),
    ("a block's residual is not built",
     [("src/advconv/models.py", "        if block.residual is not None:\n            parts, wrapped",
       "        if False:\n            parts, wrapped")],
     "tests/test_models.py::test_residual_must_keep_shape"),
]
for what, edits, test in CASES:
    originals = {path: pathlib.Path(path).read_text() for path, _, _ in edits}
    texts = dict(originals)
    for path, old, new in edits:
        assert old in texts[path], (path, old)
        texts[path] = texts[path].replace(old, new, 1)
    for path, text in texts.items():
        pathlib.Path(path).write_text(text)
    try:
        r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", test],
                           capture_output=True, text=True)
    finally:
        for path, text in originals.items():
            pathlib.Path(path).write_text(text)
    last = r.stdout.strip().splitlines()[-1]
    print(f"{'FAILS' if r.returncode else 'PASSES (bad)'} when {what}: {test} -> {last}", flush=True)
