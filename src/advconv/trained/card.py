"""A trained net's model card: what it is, how it was measured, what its probabilities mean, and
its limits, in Markdown, from the weights' own record. The demo page, a Space's README and
Hub-style weights all show this one text."""

from __future__ import annotations

from typing import Any

from ..nets.rules import check_rules
from ..nets.summary import summarize
from .calibration import BINS, KEEP, UNSURE
from .hub import TrainedModel


def card_text(name: str, trained: TrainedModel) -> str:
    record, provenance = trained.record, trained.provenance
    summary = summarize(trained.net, record.input_size)
    failed = [r.rule for r in check_rules(trained.net, record.input_size).results if not r.passed]
    config = provenance.get("config") or {}
    model = config.get("model")
    lines = [f"**{name}**: a {model if isinstance(model, str) else 'custom'} net, "
             f"{summary.total_params:,} parameters, {summary.total_macs / 1e6:.1f} M MACs per "
             f"{record.input_size}x{record.input_size} image, receptive field "
             f"{summary.final_rf[0] if summary.final_rf else 'not computed'}",
             "The assignment's rules: " + ("all pass" if not failed else "fails " + "; ".join(failed)),
             f"Classes: {', '.join(record.classes)}"]
    if config:
        optim = config.get("optim", {})
        lines.append(f"Recipe: {config.get('epochs')} epochs of {optim.get('name')} at peak lr {optim.get('lr')} "
                     f"({optim.get('schedule')}), the {config.get('data', {}).get('pipeline')} pipeline"
                     + (f", from {config['pretrained']}" if config.get("pretrained") else ""))
    data = provenance.get("data") or {}
    if data.get("test_digest"):
        lines.append(f"Data: {data.get('name')} ({data.get('images', {}).get('train', '?'):,} training and "
                     f"{data.get('images', {}).get('test', '?'):,} test images; test set {data['test_digest']})")
    lines.append(f"Measured: {measured(provenance)}")
    lines.append(f"Probabilities: {probabilities(provenance, record)}")
    lines.append(f"Limits: it knows only these {len(record.classes)} classes and answers one of them for any "
                 f"picture; every image is stretched to {record.input_size}x{record.input_size} pixels, so small "
                 "detail is lost.")
    return "\n\n".join(lines)


def measured(provenance: dict[str, Any]) -> str:
    """The accuracy the weights' record holds, and on what."""
    data = (provenance.get("data") or {}).get("name", "its training data")
    if "test_accuracy" in provenance:  # shipped weights: scored in fp32 when shipped
        acc = provenance["test_accuracy"]
        return f"{acc['with_views']:.2f} % on the {acc['images']:,} test images of {data}, with its test-time views"
    metrics = provenance.get("metrics") or {}
    for split, words in (("test", "test"), ("val", "held-out validation")):
        if metrics.get(f"{split}_acc") is not None:
            return f"{metrics[f'{split}_acc']:.2f} % on the {words} images of {data} at epoch {provenance.get('epoch')}"
    return "no accuracy recorded"


def probabilities(provenance: dict[str, Any], record) -> str:
    """What the stated probabilities mean, from the calibration stored with the weights."""
    found = provenance.get("calibration")
    if not found:
        return "as the net gives them, not calibrated (`advconv calibrate`), with no unsure answer"
    return (f"divided by a temperature of {found['temperature']:.2f}, fitted on {found['fitted_on']}: the expected "
            f"calibration error ({BINS} bins) went from {found['ece_before']:.2f} % to {found['ece_after']:.2f} %, "
            f"so a stated 80 % is right about 80 % of the time on such images. An image whose "
            f"{record.unsure_score.replace('_', ' ')} falls below {record.unsure_threshold:.3g} (a threshold that "
            f"keeps {KEEP:.0%} of held-out CIFAR-10 images) is answered \"{UNSURE}\", with its top classes "
            "still shown.")
