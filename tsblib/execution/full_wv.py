"""Full write-verify: the NIT model with every weight program-and-verified (DESIGN section 2):
the accuracy ceiling of deployment, at the highest mapping cost."""
from __future__ import annotations

from tsblib.execution.context import Deployed, EvalContext, Point, RobustContext
from tsblib.variation import mapped_weight_names


def evaluate(ctx: EvalContext):
    """Every chip of the sweep with all mapped weights write-verified."""
    model, clean = ctx.trained("nit")
    verify = {n: True for n in mapped_weight_names(model)}
    for sigma in ctx.exp.evaluation.sigmas_for("full_wv"):
        yield Point("full_wv", sigma, clean,
                    ctx.monte_carlo(model, sigma, desc=f"full_wv s={sigma}", verify=verify))


def robust(ctx: RobustContext) -> Deployed:
    """The NIT model with every mapped weight write-verified on each robustness chip."""
    model, clean = ctx.eval.trained("nit")
    verify = {n: True for n in mapped_weight_names(model)}
    return Deployed(lambda device: ctx.monte_carlo(model, device, "full_wv", verify=verify), clean)


