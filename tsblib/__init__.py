"""tsblib: the Tiny Shared Block (TSB, ICCAD 2024) artifact library.

Device-variation model, write-verify and mapping cost, the Tiny Shared Block, models, data,
training methods and Monte Carlo evaluation; `python -m tsblib --help` lists the pipeline stages.
"""
__version__ = "0.1.0"
