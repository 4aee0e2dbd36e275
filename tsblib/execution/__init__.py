"""The execution layer (DESIGN section 8, layer 4): chip-parallel evaluation (`evaluate`, with
`chipbatch` stacking chips along the channels), the training loop (`training`), the contexts the
stages hand the methods (`context`), and each method's training and deployment code, one module
per method module of `tsblib.methods` (whose spec names these functions as `Hook`s).

Only the stages that train, fine-tune or deploy import this package (recipes, train, finetune,
evaluate, robustness); dvc.yaml lists it among their code dependencies and no other stage's.
"""
