"""Where each pipeline stage reads and writes, for one profile (one place, used by the CLI,
the stages, the notebooks and dvc.yaml's documented layout)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tsblib.schema import TIMING_FOLDER


@dataclass(frozen=True)
class ProfilePaths:
    """File layout of a profile's data, checkpoints and results under a repository root."""

    profile: str
    """Profile name."""
    root: Path = Path(".")
    """Repository root (the folder holding params.yaml)."""
    model: str | None = None
    """Set by `for_model`: `result()` files then go under results/<profile>/models/<model>/
    (the per-model stages' outputs, which `summarize` concatenates)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    def for_model(self, model: str) -> "ProfilePaths":
        """The same layout with `result()` files under results/<profile>/models/<model>/."""
        return ProfilePaths(self.profile, self.root, model)

    def model_results(self, model: str) -> Path:
        """Results of the per-model stages for `model`."""
        return self.root / "results" / self.profile / "models" / model

    @property
    def prepared(self) -> Path:
        """Prepared data sets, one file per model (DVC-cached)."""
        return self.root / "data" / "prepared" / self.profile

    def prepared_file(self, model: str) -> Path:
        """Prepared data of `model`."""
        return self.prepared / f"{model}.pt"

    @property
    def validated(self) -> Path:
        """Marker written by `validate --record` (the pipeline's first DVC stage); not committed."""
        return self.root / "data" / "validated" / f"{self.profile}.json"

    @property
    def train_checkpoints(self) -> Path:
        """Trained backbones (DVC-cached)."""
        return self.root / "data" / "checkpoints" / self.profile / "train"

    def train_checkpoint_dir(self, model: str) -> Path:
        """Trained backbones of `model` (the output of its `train` stage)."""
        return self.train_checkpoints / model

    def train_checkpoint(self, model: str, method: str) -> Path:
        """Checkpoint of `model` trained by `method` ('clean', 'nit', 'tsb_backbone', ...)."""
        return self.train_checkpoint_dir(model) / f"{method}.pt"

    def train_log(self, model: str, method: str) -> Path:
        """Per-epoch curve (with wall-clock seconds) of a saved training run, kept beside the
        DVC-tracked checkpoints so that they stay byte-identical for identical training."""
        return self.train_checkpoints.with_name("train-log") / model / f"{method}.json"

    @property
    def finetune_checkpoints(self) -> Path:
        """Fine-tuned Tiny Shared Blocks (DVC-cached)."""
        return self.root / "data" / "checkpoints" / self.profile / "finetune"

    def finetune_checkpoint_dir(self, model: str) -> Path:
        """Fine-tuned blocks of `model` (the output of its `finetune` stage)."""
        return self.finetune_checkpoints / model

    def finetune_checkpoint(self, model: str, variant: str) -> Path:
        """Fine-tuned blocks of `model` for TSB `variant`, all sigmas."""
        return self.finetune_checkpoint_dir(model) / f"{variant}.pt"

    @property
    def results(self) -> Path:
        """Small, committed results of the profile."""
        return self.root / "results" / self.profile

    def result(self, name: str) -> Path:
        """A results file, e.g. 'summary.csv'; under results/<profile>/models/<model>/ for a
        model-scoped layout (`for_model`)."""
        if self.model is not None:
            return self.model_results(self.model) / name
        return self.results / name

    def timing(self, stage: str) -> Path:
        """Seconds of `stage` (per model for a model-scoped layout)."""
        return self.result(TIMING_FOLDER) / f"{stage}.json"

    @property
    def figures(self) -> Path:
        """Figures (PNG and PDF)."""
        return self.results / "figures"

    @property
    def notebooks(self) -> Path:
        """Executed figure notebooks."""
        return self.results / "notebooks"
