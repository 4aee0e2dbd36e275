"""The pipeline stages prepare, recipes, train, finetune, evaluate and mapping, one module each
(summarize is `tsblib.report`, robustness `tsblib.robustness`).

Each stage reads the previous stages' outputs from `ProfilePaths`, writes its own atomically,
and is what `python -m tsblib <stage>` and dvc.yaml call. What a method trains and how it deploys
lives in its spec under `tsblib/methods/` and its code under `tsblib/execution/`; the
stages only loop. A stage imports only what it runs, so its dvc.yaml code dependencies
(`tsblib.pipeline.code_deps`) leave out the code of every other stage.
"""
