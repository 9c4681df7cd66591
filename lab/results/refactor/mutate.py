"""Break the code, see each strengthened test fail, restore."""
import pathlib
import subprocess
import sys

CASES = [c for c in [
 ("src/advconv/rules.py", 'RuleResult("no max-pooling", not maxpools and not s.functional_maxpools,', 'RuleResult("no max-pooling", True,',
  "tests/test_rules.py::test_rule_checker_catches_bad_models"),
 ("src/advconv/models.py", 'block.padding, block.dilation, activation_fn', 'block.padding, [1] * len(block.dilation), activation_fn',
  "tests/test_models.py::test_spec_from_dict_builds_the_layers_it_lists"),
 ("src/advconv/config.py", '            flat.update(_flatten(value, f"{key}."))', '            flat.update(_flatten({k: v for k, v in value.items() if k != "cutout_size"}, f"{key}."))',
  "tests/test_config.py::test_shipped_configs_hold_what_their_files_say_and_describe_a_net_that_builds"),
 ("src/advconv/train.py", '    while epoch < cfg.epochs:', '    while epoch < cfg.epochs + (checkpoint is not None):',
  "tests/test_cli.py::test_resume_of_a_finished_run_changes_nothing"),
 ("src/advconv/train.py", '    if checkpoint.scaler:\n        scaler.load_state_dict(checkpoint.scaler)', '    pass',
  "tests/test_train.py::test_fp16_training_resumes_with_its_loss_scale"),
] if len(sys.argv) < 2 or sys.argv[1] in c[3]]
for path, old, new, test in CASES:
    p = pathlib.Path(path); original = p.read_text()
    assert old in original, (path, old)
    p.write_text(original.replace(old, new, 1))
    try:
        r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", test], capture_output=True, text=True)
    finally:
        p.write_text(original)
    last = r.stdout.strip().splitlines()[-1]
    print(f"{'FAILS' if r.returncode else 'PASSES (bad)'} with the break in {path}: {test} -> {last}")
