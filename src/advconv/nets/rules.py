"""The assignment's architecture rules, checked on a built module (not on its spec), so that
any net, ours or a user's, is judged by what it computes."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from ..config import PARAM_BUDGET
from .models import within_budget
from .summary import MAXPOOLS, format_pair, pair, summarize

COURSE_MIN_RF = 45        # the course asks a receptive field above 44 on its 32x32 images
BLOCK_NAMES = ("c1", "c2", "c3", "c4")  # the C1 C2 C3 C4 blocks of build_net, then the output
AVGPOOLS = (nn.AvgPool2d, nn.AdaptiveAvgPool2d)  # subclasses too: blocks.GlobalAvgPool


@dataclass
class RuleResult:
    rule: str
    passed: bool
    detail: str


@dataclass
class RulesReport:
    results: list[RuleResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    def __str__(self) -> str:
        lines = [f"[{'PASS' if r.passed else 'FAIL'}] {r.rule}: {r.detail}" for r in self.results]
        failed = sum(not r.passed for r in self.results)
        lines.append("All rules pass." if not failed else f"{failed} rule(s) failed.")
        return "\n".join(lines)


def _is_depthwise(module: nn.Module) -> bool:
    return isinstance(module, nn.Conv2d) and module.groups > 1 and module.groups == module.in_channels


def _closing_conv(block: nn.Module) -> nn.Module | None:
    """A block's last conv with a kernel larger than 1x1: the one that strides or dilates
    (a depthwise-separable layer's depthwise half, not its pointwise half)."""
    spatial = [m for m in block.modules()
               if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and max(pair(m.kernel_size)) > 1]
    return spatial[-1] if spatial else None


def _closes(conv: nn.Module | None) -> str | None:
    """How a block's closing conv shrinks or widens the view (stride 2+, dilation 2+), or None."""
    if conv is None or isinstance(conv, nn.ConvTranspose2d):
        return None
    stride, dilation = max(pair(conv.stride)), max(pair(conv.dilation))
    return f"stride {stride}" if stride >= 2 else f"dilation {dilation}" if dilation >= 2 else None


def layout_rule(model: nn.Module) -> RuleResult:
    """Blocks C1 C2 C3 C4 then the output, C1-C3 each closing with a stride-2 or a dilated conv.
    Verified on nets laid out as ``build_net`` makes them (children named c1-c4); any other
    module is reported as not verifiable, naming what was found."""
    rule = "C1 C2 C3 C4 then the output, C1-C3 close strided or dilated"
    children = dict(model.named_children())
    names = list(children)
    if names[:len(BLOCK_NAMES)] != list(BLOCK_NAMES):
        return RuleResult(rule, False, f"cannot be verified: the net's first children are not blocks named "
                                       f"{', '.join(BLOCK_NAMES)} (found {', '.join(names[:5]) or 'none'})")
    extra = [n for n in names[len(BLOCK_NAMES):] if _closing_conv(children[n]) is not None]
    if extra:
        return RuleResult(rule, False, f"{', '.join(extra)} after c4 holds a conv larger than 1x1: "
                                       "only pooling and a 1x1 conv or linear layer may follow C4")
    closings = {n: _closes(_closing_conv(children[n])) for n in BLOCK_NAMES[:3]}
    open_ = [n for n, how in closings.items() if how is None]
    if open_:
        return RuleResult(rule, False, f"{', '.join(open_)} closes with neither a stride-2 nor a dilated conv")
    return RuleResult(rule, True, ", ".join(f"{n} closes with {how}" for n, how in closings.items()))


def check_rules(model: nn.Module, input_size: int = 32, max_params: int = PARAM_BUDGET) -> RulesReport:
    """The assignment's architecture rules, checked on the built module (not on its spec)."""
    s = summarize(model, input_size)
    mods = list(model.modules())
    maxpools = [n for n, m in model.named_modules() if isinstance(m, MAXPOOLS)]
    depthwise = [n for n, m in model.named_modules() if _is_depthwise(m)]
    dilated = [n for n, m in model.named_modules()
               if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and max(pair(m.dilation)) > 1]
    avgpools = {n for n, m in model.named_modules() if isinstance(m, AVGPOOLS)}
    gap = [l.name for l in s.layers if l.name in avgpools and l.output_shape[-2:] == (1, 1)]
    has_pointwise_after_dw = any(
        isinstance(b, nn.Conv2d) and pair(b.kernel_size) == (1, 1) and _is_depthwise(a)
        for a, b in zip(mods, mods[1:])
    )
    min_rf = max(COURSE_MIN_RF, input_size)
    report = RulesReport([
        layout_rule(model),
        RuleResult("no max-pooling", not maxpools and not s.functional_maxpools,
                   f"found {', '.join(maxpools + [f'{s.functional_maxpools} functional max-pool call(s)'] * bool(s.functional_maxpools))}"
                   if maxpools or s.functional_maxpools else "none found"),
        RuleResult("depthwise-separable conv", bool(depthwise) and has_pointwise_after_dw,
                   "no depthwise conv (groups == in_channels) found" if not depthwise
                   else f"{len(depthwise)} depthwise layer(s): {', '.join(depthwise)}" if has_pointwise_after_dw
                   else f"depthwise {', '.join(depthwise)} not followed by a 1x1 pointwise conv"),
        RuleResult("dilated conv", bool(dilated),
                   f"{len(dilated)} dilated layer(s): {', '.join(dilated)}" if dilated
                   else "no conv with dilation > 1 found"),
        RuleResult("global average pooling", bool(gap),
                   f"at {', '.join(gap)}" if gap else "no average pooling down to 1x1 found"),
        RuleResult(f"params < {max_params:,}", within_budget(s.total_params, max_params),
                   f"{s.total_params:,} parameters"),
        RuleResult(f"receptive field >= {min_rf}", s.final_rf is not None and min(s.final_rf) >= min_rf,
                   f"final receptive field {format_pair(s.final_rf)}" if s.final_rf
                   else f"cannot be verified: {s.unseen}"),
    ])
    return report
