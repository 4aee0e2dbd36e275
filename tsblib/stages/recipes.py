"""The recipes stage: the validation sweeps behind the stated training choices (recipes.csv)."""
from __future__ import annotations

import dataclasses

from tqdm.auto import tqdm

from tsblib import io, schema
from tsblib.config import MethodsConfig, ProfileConfig
from tsblib.methods.registry import get_method
from tsblib.paths import ProfilePaths
from tsblib.runtime import configure
from tsblib.stages.common import prepared_data
from tsblib.stages.train import _train_one


def recipes_stage(profile: ProfileConfig, paths: ProfilePaths, progress: bool = True) -> None:
    """The validation sweeps behind the stated choices: NIT under every candidate recipe, and
    every NFT variant without an authors' beta under every candidate beta (with the stated
    recipe); per-epoch validation accuracy on chips at sigma_train -> recipes.csv."""
    device = configure(profile.runtime)
    rows = []
    for exp in profile.experiments:
        data = prepared_data(paths, exp)
        sel = exp.selection
        epochs = sel.epochs or exp.train.epochs
        runs = []
        for r in sel.recipes:
            cfg = dataclasses.replace(exp.train, optimizer=r.optimizer, lr=r.lr,
                                      weight_decay=r.weight_decay, epochs=epochs)
            runs.append(("nit", f"recipe: {cfg.recipe}", cfg, exp))
        for method in exp.methods.methods:
            # The sweep reads no configured method parameter (so recipes.csv does not depend
            # on them): each candidate is the method's defaults with the candidate beta.
            params_cls = get_method(method).params
            if params_cls is None or "beta" not in {f.name for f in dataclasses.fields(params_cls)}:
                continue
            if params_cls().authors(exp.model, data.name) is not None:
                continue
            for beta in sel.nft_betas:
                tuned = dataclasses.replace(exp, methods=MethodsConfig(
                    methods=(method,), params={method: params_cls(beta=beta)}))
                runs.append((method, f"beta: {beta:g}",
                             dataclasses.replace(exp.train, epochs=epochs), tuned))
        for method, candidate, cfg, run_exp in tqdm(runs, desc=f"{exp.model} sweeps",
                                                    disable=not progress):
            result = _train_one(get_method(method), run_exp, cfg, data, profile, device,
                                f"{exp.model}/{method} {candidate}", progress)
            rows += [{"model": exp.model, "method": method, "candidate": candidate,
                      "recipe": cfg.recipe, **row} for row in result.curve]
    io.write_table(paths, schema.RECIPES, rows)
