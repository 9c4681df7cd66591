"""The advconv command: build, check, train and use compact CNNs made of advanced convolutions.

Each subcommand is a thin layer over one function of the Python API (advconv.api), imported as
the command runs, so that ``--help`` answers without loading torch. Errors a
user can fix (missing data, a bad config, an unreadable checkpoint) print one clear line and
exit with status 2; a failed rule check exits with status 1; anything else is a bug and shows
its traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import __version__, page, recipes
from .config import PARAM_BUDGET, RENAMED, SETTINGS, by_leaf, load_config, parse_yaml
from .data.datasets import SPLIT_NAMES, image_files
from .errors import AdvconvError
from .nets.specs import MODELS
from .trained import runfiles
from .trained.calibration import SCORES
from .training import lrfind


def flags(*names: str) -> list[str]:
    """``--name``, with the other spelling of a multi-word name as an alias (dashes or underscores)."""
    spellings = [f"--{s}" for name in names for s in (name, name.replace("_", "-"), name.replace("-", "_"))]
    return list(dict.fromkeys(spellings))


class Renamed(argparse.Action):
    """An option's old spelling: one line that names the new one."""

    def __call__(self, parser, namespace, values, option_string=None):
        negated = "no-" if option_string.startswith("--no") else ""
        parser.error(f"{option_string} is now --{negated}{RENAMED[self.dest].replace('_', '-')} (CHANGELOG.md)")


def add_renamed(p: argparse.ArgumentParser) -> None:
    for old in RENAMED:
        p.add_argument(*flags(old, f"no-{old}"), dest=old, nargs="?", action=Renamed, default=argparse.SUPPRESS,
                       help=argparse.SUPPRESS)


def cmd_summary(args: argparse.Namespace) -> int:
    from . import api

    print(api.summary(args.model, args.input_size).table())
    return 0


def cmd_recipes(args: argparse.Namespace) -> int:
    """One line a shipped recipe: its name, net, epochs, and what it reached in how long on which machine."""
    reached = recipes.measured()
    for name in recipes.names():
        cfg = load_config(name)
        net = cfg.model if isinstance(cfg.model, str) else "its own net"
        m = reached.get(name)
        result = f"{m.accuracy:.2f} % {m.split} in {m.minutes:g} min ({m.machine})" if m else "not measured"
        print(f"{name:<14} {net:<16} {cfg.epochs:>4} epochs  {result}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from . import api

    report = api.check(args.model, args.input_size, args.max_params)
    print(report)
    return 0 if report.passed else 1


def cmd_train(args: argparse.Namespace) -> int:
    from . import api

    overrides = {path: value for path, value in vars(args).items() if path in SETTINGS}
    try:
        if args.resume:
            given = {"config": args.config, "overwrite": args.overwrite or None} | overrides
            api.fit(resume_from=args.resume, progress=not args.no_progress,
                    **{k: v for k, v in given.items() if v is not None})
        else:
            api.fit(args.config, progress=not args.no_progress, overwrite=args.overwrite, **overrides)
    except KeyboardInterrupt:
        run_dir = args.resume or overrides.get("run_dir") or api.load_config(args.config).run_dir
        last = Path(run_dir) / runfiles.LAST
        print("advconv train: interrupted; " + (
            f"the last finished epoch is kept: continue with `advconv train --resume {run_dir}`"
            if last.exists() else "no epoch had finished, so there is nothing to resume"), file=sys.stderr)
        return 130
    return 0


def cmd_lr_find(args: argparse.Namespace) -> int:
    from . import api

    overrides = {path: value for path, value in vars(args).items() if path in SETTINGS}
    test = api.lr_find(args.config, output=args.output, steps=args.steps, start_lr=args.start_lr,
                       end_lr=args.end_lr, progress=not args.no_progress, **overrides)
    print("\n".join(test.lines()))
    print(f"wrote {args.output}")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from . import api

    overrides = {path: value for path, value in vars(args).items() if path in SETTINGS}
    try:
        found = api.search(args.config, budget_minutes=args.budget_minutes, trials=args.trials, storage=args.storage,
                           study=args.study, out=args.out, **overrides)
    except KeyboardInterrupt:
        print("advconv search: stopped; the trial in flight is lost, the rest kept: the same command continues "
              "the study", file=sys.stderr)
        return 130
    print(f"wrote {found.out}: trials.md, trials.csv" + (f", {found.best_config.name}, the figures"
                                                       if found.best_config else ""))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from . import api

    scored = api.evaluate(args.model, args.data, tta_flip=args.tta_flip, tta_shift=args.tta_shift, split=args.split,
                          cache_dir=args.cache_dir)
    print(scored.result.line(SPLIT_NAMES[args.split]))
    print(scored.calibration_line())
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from . import api

    found, written = api.calibrate(args.model, args.data, args.unsure_score, args.output, args.cache_dir)
    print("\n".join(found.lines()))
    print(f"wrote {written}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from . import api

    compared = api.compare(args.first, args.second, args.data, args.split, args.tta_flip, args.tta_shift,
                           args.cache_dir)
    print("\n".join(compared.lines(args.first, args.second)))
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from . import api

    for path in api.plot(args.run_dir, args.data, split=args.split, cache_dir=args.cache_dir):
        print(f"wrote {path}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from . import api

    predictions = api.predict_files(args.model, image_files(args.images), args.top_k, args.tta_flip, args.tta_shift,
                                    skip_corrupt=args.skip_corrupt)
    for prediction in predictions:
        print(prediction.line())
    if args.csv:
        from .trained.inference import write_csv

        print(f"wrote {write_csv(predictions, args.csv)}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from . import api

    exported = api.export(args.model, args.output, args.format, args.tta, args.int8, args.data, args.calibration,
                          args.cache_dir)
    print(f"wrote {exported.paths[0]}")
    if exported.calibrated_on is not None:
        print(f"wrote {exported.paths[1]} (int8, calibrated on {exported.calibrated_on} training images)")
    if exported.note:
        print(f"note: {exported.note}")
    return 0


def cmd_space(args: argparse.Namespace) -> int:
    from . import api

    print(f"wrote {api.space(args.model, args.output)}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .page.demo import serve

    print(f"advconv demo: serving {args.model} at http://{args.host}:{args.port} (Ctrl-C stops it)", flush=True)
    serve(args.model, args.data, args.host, args.port, args.cache_dir)
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from . import api
    from .trained.hub import beside

    output = args.output or str(beside(args.model, runfiles.GRADCAM))
    written = api.explain(args.model, output, args.data, args.index, args.count, args.split, args.cache_dir, args.layer)
    print(f"wrote {written}")
    return 0


def cmd_rf(args: argparse.Namespace) -> int:
    from . import api
    from .trained.hub import beside

    output = args.output or str(beside(args.model, runfiles.FIELD if args.layer else runfiles.FIELD_GROWTH))
    report = api.receptive_fields(args.model, args.layer, args.at, args.image, args.images, args.data, output,
                                  args.cache_dir)
    print("\n".join(report.lines()))
    print(f"wrote {report.paths[0]}")
    return 0


def unit(text: str) -> tuple[int, int]:
    """``ROW,COL`` of a unit on a layer's map."""
    try:
        row, col = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected ROW,COL (two integers), got {text!r}") from None
    return row, col


TRAINED = ("a shipped tag (e.g. stem8.default) or architecture with shipped weights, a run directory, "
           "a .pt or a .safetensors")


def add_trained_model(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", "--checkpoint", dest="model", required=True, help=f"the trained model: {TRAINED}")


def add_data_options(p: argparse.ArgumentParser, help_: str = "defaults to the data the model was trained on") -> None:
    p.add_argument("--data", default=None, help=help_)
    p.add_argument(*flags("cache_dir"), dest="cache_dir", default=None,
                   help="where decoded images are cached (default: $ADVCONV_CACHE, else ~/.cache/advconv)")


def add_view_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(*flags("tta_flip"), dest="tta_flip", action=argparse.BooleanOptionalAction, default=None,
                   help="average with the mirrored image (default: as the run was evaluated)")
    p.add_argument(*flags("tta_shift"), dest="tta_shift", type=int, default=None, metavar="N",
                   help="also average over views shifted by +-N pixels (default: as the run was evaluated)")
    add_renamed(p)


def add_figure_split(p: argparse.ArgumentParser) -> None:
    p.add_argument("--split", choices=SPLIT_NAMES, default=None,
                   help="the images shown: a run with a validation split shows its held-out ones (val), "
                        "so the test set stays unseen while recipes are chosen; else the test set")


def _value(raw: str):
    """A config value as typed on the command line: read as YAML (numbers, true/false, null, mappings)."""
    return parse_yaml(raw)


def add_config_options(p: argparse.ArgumentParser) -> None:
    """One option per config field, read from the field itself: its dotted path, its leaf name
    where that is unique, either spelling; ``--no-NAME`` for booleans."""
    leaves = by_leaf()
    add_renamed(p)
    for s in SETTINGS.values():
        leaf = s.path.rsplit(".", 1)[-1]
        names = ["data", s.path] if s.path == "data.path" else \
            [s.path] + ([leaf] if leaf != s.path and len(leaves[leaf]) == 1 else [])
        choices = f"; one of {', '.join(s.choices)}" if s.choices else ""
        help_ = f"{s.help}{choices} (default: {s.default!r})".replace("%", "%%")
        if s.hint is bool:
            p.add_argument(*flags(*names), dest=s.path, nargs="?", const=True, type=_value, default=argparse.SUPPRESS,
                           metavar="BOOL", help=help_)
            p.add_argument(*flags(*[f"no-{n}" for n in names]), dest=s.path, action="store_false",
                           default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        else:
            p.add_argument(*flags(*names), dest=s.path, type=_value, default=argparse.SUPPRESS,
                           metavar=leaf.upper(), help=help_)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="advconv", description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--version", action="version", version=f"advconv {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    for name, help_ in (("summary", "per-layer table: shapes, params, MACs, receptive field"),
                        ("check", "check the assignment's architecture rules (exit 1 if one fails)")):
        p = sub.add_parser(name, help=help_, allow_abbrev=False)
        p.add_argument("--model", default="stem8",
                       help=f"an architecture ({', '.join(sorted(MODELS))}), a recipe (`advconv recipes`) or "
                            f"config .yaml, {TRAINED}, or "
                            "package.module:attribute (default: stem8, the default config's net)")
        p.add_argument(*flags("input_size", "image_size"), dest="input_size", type=int, default=None,
                       help="image size (default: the model's own, a config's data.image_size, else 32)")
        if name == "check":
            p.add_argument(*flags("max_params"), dest="max_params", type=int, default=PARAM_BUDGET)

    sub.add_parser("recipes", help="the shipped recipes, by name: net, epochs, what each reached", allow_abbrev=False)

    p = sub.add_parser("train", help="train a model; every config field is an option", allow_abbrev=False,
                       usage="advconv train [--config YAML] [--resume RUN_DIR] [--overwrite] [--no-progress] "
                             "[--FIELD VALUE ...]")
    p.add_argument("--config", default=None, help="a shipped recipe's name (`advconv recipes`: fast, accurate, "
                                                  "...) or a YAML file; fields given as options override it")
    p.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue the run in RUN_DIR as it was configured")
    p.add_argument("--overwrite", action="store_true",
                   help="train into a run directory that holds a run, deleting that run's files first")
    p.add_argument(*flags("no_progress"), dest="no_progress", action="store_true", help="no tqdm bars (logs stay)")
    add_config_options(p.add_argument_group("config fields (a YAML value each; --section.field where a name "
                                            "is not unique)"))

    p = sub.add_parser("lr-find", help="learning-rate range test: loss against a growing lr, and a peak lr for "
                                       "one-cycle", allow_abbrev=False,
                       usage="advconv lr-find [--config YAML] [--steps N] [--start_lr LR] [--end_lr LR] "
                             "[--output PNG] [--FIELD VALUE ...]")
    p.add_argument("--config", default=None, help="YAML config whose net, data and optimizer are tested")
    p.add_argument("--steps", type=int, default=lrfind.STEPS,
                   help=f"training steps of the ramp (at most {lrfind.MAX_PASSES} passes over the data)")
    p.add_argument(*flags("start_lr"), dest="start_lr", type=float, default=lrfind.START_LR)
    p.add_argument(*flags("end_lr"), dest="end_lr", type=float, default=lrfind.END_LR)
    p.add_argument("--output", default=lrfind.FIGURE, help=f"the figure (default: {lrfind.FIGURE})")
    p.add_argument(*flags("no_progress"), dest="no_progress", action="store_true", help="no tqdm bar while decoding")
    add_config_options(p.add_argument_group("config fields, as for train"))

    p = sub.add_parser("search", help="search nets and recipes that keep the rules, for a training budget "
                                      "(Optuna; needs pip install 'advconv[search]')", allow_abbrev=False,
                       usage="advconv search --budget-minutes M --trials N [--storage URL] [--study NAME] "
                             "[--config BASE] [--data D] [--out DIR] [--FIELD VALUE ...]")
    p.add_argument(*flags("budget_minutes"), dest="budget_minutes", type=float, required=True,
                   help="minutes of training per trial on this machine; a timed epoch sizes each trial's schedule")
    p.add_argument("--trials", type=int, required=True,
                   help="the study stops when it holds this many trained trials (candidates that break a rule "
                        "are refused untrained and do not count)")
    p.add_argument("--storage", default=None, help="the study's database URL, shared by every process and machine "
                                                   "that joins it (default: SQLite in OUT)")
    p.add_argument("--study", default="advconv", help="the study's name in the storage (default: advconv)")
    p.add_argument("--config", default="fast", help="the recipe each trial starts from: a shipped name or a YAML "
                                                    "file (default: fast)")
    p.add_argument("--out", default="runs/search", help="trial runs, trials.md/.csv, best.yaml, the figures "
                                                        "(default: runs/search)")
    add_config_options(p.add_argument_group("config fields, as for train"))

    p = sub.add_parser("evaluate", help="test-set accuracy of a trained model", allow_abbrev=False)
    add_trained_model(p)
    add_data_options(p)
    p.add_argument("--split", choices=SPLIT_NAMES, default="test",
                   help="val: the images the run held out of training (data.val_split), to compare "
                        "test-time views or runs without the test set")
    add_view_options(p)

    p = sub.add_parser("calibrate", help="fit a trained model's temperature and unsure threshold on images its "
                                         "figures do not use, and store them with its weights", allow_abbrev=False)
    add_trained_model(p)
    add_data_options(p)
    p.add_argument(*flags("unsure_score"), dest="unsure_score", choices=SCORES, default=SCORES[0],
                   help=f"how sure the net is of an image, for the unsure answer (default: {SCORES[0]})")
    p.add_argument("--output", default=None, help="the calibrated weights, .safetensors (default: the weights file "
                                                  "the model came from; a run directory's model.safetensors)")

    p = sub.add_parser("compare", help="two trained models on the same images: is the gap beyond chance? "
                                       "(exact McNemar test)", allow_abbrev=False)
    p.add_argument("first", help=TRAINED)
    p.add_argument("second", help="the same kinds")
    add_data_options(p, "defaults to the data each model was trained on")
    p.add_argument("--split", choices=SPLIT_NAMES, default="val",
                   help="val (default): the images both runs held out of training; test: the test set")
    add_view_options(p)

    p = sub.add_parser("plot", help="curves, misclassified grid, confusion matrix of a run", allow_abbrev=False)
    p.add_argument("run_dir")
    add_data_options(p, "defaults to the data the run was trained on")
    add_figure_split(p)

    p = sub.add_parser("predict", help="top-k classes of image files or folders of them (any size/format)",
                       allow_abbrev=False)
    add_trained_model(p)
    p.add_argument(*flags("top_k"), dest="top_k", type=int, default=3)
    p.add_argument(*flags("skip_corrupt"), dest="skip_corrupt", action="store_true",
                   help="skip files that are not readable images, with a warning each, instead of stopping")
    p.add_argument("--csv", default=None, metavar="PATH", help="also write the predictions as CSV")
    add_view_options(p)
    p.add_argument("images", nargs="+", help="image files, or folders whose images are all predicted")

    p = sub.add_parser("export", help="export a trained model to ONNX, TorchScript or Hub-style weights",
                       allow_abbrev=False)
    add_trained_model(p)
    p.add_argument("--format", choices=("onnx", "torchscript", "hub"), default="onnx",
                   help="hub: a folder of model.safetensors, config.json and a model card, as the Hugging Face Hub "
                        "keeps weights (push it with huggingface_hub.upload_folder)")
    p.add_argument("--tta", action="store_true",
                   help="bake the run's test-time views (flip, shifts) into the graph: the accuracy it reported")
    p.add_argument("--int8", action="store_true", help="also write a statically quantized int8 ONNX file")
    p.add_argument("--calibration", type=int, default=512, metavar="N",
                   help="training images that calibrate the int8 activation ranges")
    add_data_options(p, "for --int8: defaults to the data the model was trained on")
    p.add_argument("--output", default=None, help="defaults to beside the model, named after it: .onnx, "
                                                  ".torchscript.pt, or a folder ending _hub")

    p = sub.add_parser("explain", help="Grad-CAM grid for misclassified or chosen test images", allow_abbrev=False)
    add_trained_model(p)
    add_data_options(p)
    add_figure_split(p)
    p.add_argument("--index", type=int, nargs="*", default=None,
                   help="indices of images in that split (default: misclassified ones)")
    p.add_argument("--count", type=int, default=12, help="how many misclassified images")
    p.add_argument("--layer", default=None, help="the block Grad-CAM looks at: c1, c2, ... (default: the last)")
    p.add_argument("--output", default=None, help="PNG path (default: gradcam.png beside the model)")

    p = sub.add_parser("rf", help="receptive fields of a net's units, theoretical and effective (a figure and the "
                                  "sides)", allow_abbrev=False)
    p.add_argument("--model", default="stem8",
                   help=f"an architecture (random weights), a recipe or config .yaml, or {TRAINED} (default: stem8)")
    p.add_argument("--layer", default=None,
                   help="one layer's unit: a block (c1..c4: its last conv) or a conv by name; default: every conv "
                        "layer, as a table and a growth figure")
    p.add_argument("--at", type=unit, default=None, metavar="ROW,COL",
                   help="the unit on the layer's map (default: its centre)")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--image", default=None, help="measure on this image at the net's input size (a deep field "
                                                      "is clipped by it)")
    source.add_argument("--images", type=int, default=64, metavar="N",
                        help="measure on N mosaics of test images large enough that no field is clipped (noise "
                             "images when no labelled data is at hand; default: 64)")
    add_data_options(p, "labelled images whose test set the mosaics are made of (default: the data the model was "
                        "trained on, when it is on this machine)")
    p.add_argument("--output", default=None, help="PNG path (default: rf.png, or rf_growth.png without --layer, "
                                                  "beside the model)")

    p = sub.add_parser("space", help="a folder ready to push to a Hugging Face Space serving a trained model's page "
                                     "(needs pip install 'advconv[demo]')", allow_abbrev=False)
    p.add_argument("model", help=TRAINED)
    p.add_argument("output", help="the folder to write (new, empty, or an earlier Space folder)")

    p = sub.add_parser("demo", help="a web page for a trained model: upload images, top-k, Grad-CAM, misclassified "
                                    "test images (needs pip install 'advconv[demo]')", allow_abbrev=False)
    add_trained_model(p)
    add_data_options(p, "labelled images whose misclassified ones the page shows (default: the data the model was "
                        "trained on, when it is on this machine)")
    p.add_argument("--host", default=page.HOST, help="the address to listen on (default: this machine only)")
    p.add_argument("--port", type=int, default=page.PORT)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return globals()[f"cmd_{args.command.replace('-', '_')}"](args)
    except AdvconvError as exc:
        print(f"advconv {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
