"""The ``advconv`` command: summary, check, train, evaluate, plot, predict, export, explain.

Errors a user can fix (missing data, a bad config, an unreadable checkpoint) print one
clear line and exit with status 2; a failed rule check exits with status 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .api import resolve_model
from .checkpoint import CheckpointError
from .config import Config, ConfigError, describe_fields, load_config, parse_overrides
from .data import SPLIT_NAMES, DataError
from .loops import TrainingDiverged
from .models import MODELS
from .summary import PARAM_BUDGET, check_rules, summarize

USER_ERRORS = (ConfigError, DataError, CheckpointError, TrainingDiverged, ValueError, FileNotFoundError)


def output_path(source: str, filename: str) -> Path:
    """Where an output of ``source`` goes unless --output says: in its run directory, beside its
    file, or (a shipped name) in the current folder."""
    path = Path(source)
    return (path if path.is_dir() else path.parent if path.exists() else Path(".")) / filename


def input_size(args: argparse.Namespace) -> int:
    """--input-size, else the image size of a config given as the model, else 32."""
    if args.input_size is not None:
        return args.input_size
    return load_config(args.model).data.image_size if args.model.endswith((".yaml", ".yml")) else 32


def cmd_summary(args: argparse.Namespace) -> int:
    print(summarize(resolve_model(args.model), input_size(args)).table())
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    report = check_rules(resolve_model(args.model), input_size(args), args.max_params)
    print(report)
    return 0 if report.passed else 1


def cmd_train(args: argparse.Namespace, extra: list[str]) -> int:
    from .train import fit, resume

    if args.resume:
        given = [f"--{k}" for k in ("config", "data") if getattr(args, k) is not None]
        given += [a.split("=", 1)[0] for a in extra if a.startswith("--")]
        if given or args.overwrite:
            named = ", ".join(given + ["--overwrite"] * args.overwrite)
            raise ConfigError(f"--resume continues {args.resume} exactly as it was configured, so {named} "
                              "cannot be given with it; a longer or changed run is a new run "
                              "(a new --run_dir, or --overwrite)")
        run_dir, train = args.resume, lambda: resume(args.resume, progress=not args.no_progress)
    else:
        overrides = parse_overrides(extra)
        if args.data is not None:
            overrides["data.path"] = args.data
        cfg = load_config(args.config, overrides)
        run_dir = cfg.run_dir
        train = lambda: fit(cfg, progress=not args.no_progress, overwrite=args.overwrite)  # noqa: E731
    try:
        train()
    except KeyboardInterrupt:
        last = Path(run_dir) / "last.pt"
        print("advconv train: interrupted; " + (
            f"the last finished epoch is kept: continue with `advconv train --resume {run_dir}`"
            if last.exists() else "no epoch had finished, so there is nothing to resume"), file=sys.stderr)
        return 130
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .report import evaluate_checkpoint

    scored = evaluate_checkpoint(args.model, args.data, tta=args.tta, tta_shift=args.tta_shift, split=args.split)
    print(scored.result.line(SPLIT_NAMES[args.split]))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from .compare import compare_models

    compared = compare_models(args.first, args.second, args.data, args.split, args.tta, args.tta_shift)
    print("\n".join(compared.lines(args.first, args.second)))
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from .report import plot_run

    for path in plot_run(args.run_dir, args.data):
        print(f"wrote {path}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from .data import image_files
    from .inference import predict_files, write_csv

    predictions = predict_files(args.model, image_files(args.images), args.top_k, args.tta, args.tta_shift)
    for prediction in predictions:
        print(prediction.line())
    if args.csv:
        print(f"wrote {write_csv(predictions, args.csv)}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .checkpoint import load_model
    from .inference import export_model, quantize_onnx, with_views

    trained = load_model(args.model)
    model, record = trained.net, trained.record
    viewed = with_views(model, record)
    if args.tta:
        model = viewed
    if args.int8 and args.format != "onnx":
        raise ValueError("--int8 quantizes an ONNX file: use it with --format onnx")
    suffix = {"onnx": ".onnx", "torchscript": ".torchscript.pt"}[args.format]
    stem = "model" if Path(args.model).is_dir() else Path(args.model).stem
    output = Path(args.output or output_path(args.model, stem + suffix))
    print(f"wrote {export_model(model, output, args.format, record.input_size, record)}")
    if args.int8:
        from .report import trained_on

        train, _ = trained_on(trained, args.data)
        int8, used = quantize_onnx(output, output.with_suffix(".int8.onnx"), train.images, record.stats,
                                   args.calibration)
        print(f"wrote {int8} (int8, calibrated on {used} training images)")
    if not args.tta and (viewed.flip or viewed.shift):
        print(f"note: the run was evaluated with test-time views (flip {viewed.flip}, shift {viewed.shift}); "
              "this file scores the plain net, a little lower; --tta bakes the views into the graph")
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from .explain import explain_checkpoint

    output = args.output or str(output_path(args.model, "gradcam.png"))
    print(f"wrote {explain_checkpoint(args.model, output, args.data, args.index, args.count)}")
    return 0


def add_model_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", "--checkpoint", dest="model", required=True,
                   help="a run directory, a .pt checkpoint, a .safetensors, or a shipped name (e.g. assignment9)")


def add_view_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tta", action=argparse.BooleanOptionalAction, default=None,
                   help="average with the mirrored image (default: as the run was evaluated)")
    p.add_argument("--tta-shift", type=int, default=None, metavar="N",
                   help="also average over views shifted by +-N pixels (default: as the run was evaluated)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="advconv", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    for name, help_ in (("summary", "per-layer table: shapes, params, MACs, receptive field"),
                        ("check", "check the assignment's architecture rules (exit 1 if one fails)")):
        p = sub.add_parser(name, help=help_)
        p.add_argument("--model", default=Config().model,
                       help=f"one of {', '.join(sorted(MODELS))}, a config .yaml, or package.module:attribute "
                            "(default: the default config's net)")
        p.add_argument("--input-size", type=int, default=None,
                       help="image size (default: a config's data.image_size, else 32)")
        if name == "check":
            p.add_argument("--max-params", type=int, default=PARAM_BUDGET)

    p = sub.add_parser("train", help="train a model; extra --field value pairs override the config",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="config fields, each settable as --field value (or --section.field value), e.g.\n"
                              "--epochs 30 --lr 1e-3 --optim.schedule cosine:\n" + describe_fields())
    p.add_argument("--config", default=None, help="YAML config (e.g. configs/assignment9.yaml)")
    p.add_argument("--data", default=None, help="image-folder dir or .tar.gz; omit to download CIFAR-10")
    p.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue the run in RUN_DIR")
    p.add_argument("--overwrite", action="store_true",
                   help="train into a run directory that holds a run, deleting that run's files first")
    p.add_argument("--no-progress", action="store_true", help="no tqdm bars (logs stay)")

    p = sub.add_parser("evaluate", help="test-set accuracy of a trained model")
    add_model_option(p)
    p.add_argument("--data", default=None, help="defaults to the data the model was trained on")
    p.add_argument("--split", choices=SPLIT_NAMES, default="test",
                   help="val: the images the run held out of training (data.val_split), to compare "
                        "test-time views or runs without the test set")
    add_view_options(p)

    p = sub.add_parser("compare", help="two trained models on the same images: is the gap beyond chance? "
                                       "(exact McNemar test)")
    p.add_argument("first", help="a run directory, a .pt checkpoint, a .safetensors, or a shipped name")
    p.add_argument("second", help="the same kinds")
    p.add_argument("--data", default=None, help="defaults to the data each model was trained on")
    p.add_argument("--split", choices=SPLIT_NAMES, default="val",
                   help="val (default): the images both runs held out of training; test: the test set")
    add_view_options(p)

    p = sub.add_parser("plot", help="curves, misclassified grid, confusion matrix of a run")
    p.add_argument("run_dir")
    p.add_argument("--data", default=None, help="defaults to the data the run was trained on")

    p = sub.add_parser("predict", help="top-k classes of image files or folders of them (any size/format)")
    add_model_option(p)
    p.add_argument("--top-k", type=int, default=3)
    p.add_argument("--csv", default=None, metavar="PATH", help="also write the predictions as CSV")
    add_view_options(p)
    p.add_argument("images", nargs="+", help="image files, or folders whose images are all predicted")

    p = sub.add_parser("export", help="export a trained model to ONNX or TorchScript")
    add_model_option(p)
    p.add_argument("--format", choices=("onnx", "torchscript"), default="onnx")
    p.add_argument("--tta", action="store_true",
                   help="bake the run's test-time views (flip, shifts) into the graph: the accuracy it reported")
    p.add_argument("--int8", action="store_true", help="also write a statically quantized int8 ONNX file")
    p.add_argument("--calibration", type=int, default=512, metavar="N",
                   help="training images that calibrate the int8 activation ranges")
    p.add_argument("--data", default=None, help="for --int8: defaults to the data the model was trained on")
    p.add_argument("--output", default=None, help="defaults to beside the model, named after it, .onnx/.torchscript.pt")

    p = sub.add_parser("explain", help="Grad-CAM grid for misclassified or chosen test images")
    add_model_option(p)
    p.add_argument("--data", default=None, help="defaults to the data the model was trained on")
    p.add_argument("--index", type=int, nargs="*", default=None, help="test-set indices (default: misclassified)")
    p.add_argument("--count", type=int, default=12, help="how many misclassified images")
    p.add_argument("--output", default=None, help="PNG path (default: gradcam.png beside the model)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "train":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        if args.command == "train":
            return cmd_train(args, extra)
        return globals()[f"cmd_{args.command}"](args)
    except USER_ERRORS as exc:
        print(f"advconv {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
