"""What a method adds beyond its own run and deployment (tsblib/methods/studies.py): the
snapshots it deploys and its studies' training jobs come from its own modules, so the train,
finetune and evaluate stages switch on no method name."""
import dataclasses

import pytest

from tsblib import schema
from tsblib.methods import studies
from tsblib.methods.studies import Study, TrainingJob, insert_after, register_study
from tsblib.profiles import profile_from_dict

RAW = {"data": {"dataset": "mnist-embedded"}, "models": {"lenet3": {}},
       "train": {"epochs": 10, "extra_seeds": [1, 2]},
       "methods": {"methods": ["clean", "nit", "swim", "tsb"], "tsb_early_fraction": 0.2,
                   "tsb_annealed": True}}


def _jobs(raw):
    return studies.training_jobs(profile_from_dict("t", raw).experiment("lenet3"))


def test_tsb_adds_its_backbone_trajectory_and_seeds_to_nit_s_run():
    jobs = {j.run: j for j in _jobs(RAW)}
    assert list(jobs) == ["clean", "nit", "tsb_backbone_annealed", "nit_seed1", "nit_seed2"]
    nit = jobs["nit"]
    assert nit.files == ("nit", "tsb_backbone", "nit_epochs")
    assert nit.snapshot_epochs == tuple(range(1, 11)) and not nit.extra
    assert nit.snapshots == (studies.Snapshot("tsb_backbone", "tsb_backbone", 2),)
    annealed = jobs["tsb_backbone_annealed"]
    assert annealed.deploys_last and annealed.extra and annealed.snapshot_epochs == (2,)
    assert annealed.cfg.epochs == 2 and annealed.spec.name == "nit"
    seed = jobs["nit_seed2"]
    assert seed.extra and seed.cfg.seed == 2 and seed.cfg.extra_seeds == ()
    assert seed.files == ("nit_seed2", "tsb_backbone_seed2") and seed.snapshot_epochs == (2,)


def test_without_tsb_nit_keeps_only_the_backbone_snapshot():
    raw = {**RAW, "methods": {**RAW["methods"], "methods": ["clean", "nit", "swim"]}}
    jobs = _jobs(raw)
    assert [j.run for j in jobs] == ["clean", "nit"]
    assert jobs[1].files == ("nit", "tsb_backbone") and jobs[1].snapshot_epochs == (2,)


def test_a_toy_study_extends_the_jobs_of_its_method_only(monkeypatch):
    def more(exp, jobs):
        nit = next(j for j in jobs if j.run == "nit")
        return insert_after(jobs, "nit", [TrainingJob(
            "nit_long", nit.spec, dataclasses.replace(nit.cfg, epochs=20), extra=True)])

    toy = Study(name="toy", method="swim", order=0, tables=(), jobs=more)
    monkeypatch.setattr(studies, "STUDIES", [*studies.all_studies()])
    register_study(toy)
    runs = [j.run for j in _jobs(RAW)]
    assert runs == ["clean", "nit", "nit_long", "tsb_backbone_annealed", "nit_seed1",
                    "nit_seed2"]  # order 0: before TSB's studies
    raw = {**RAW, "methods": {**RAW["methods"], "methods": ["clean", "nit", "tsb"]}}
    assert "nit_long" not in [j.run for j in _jobs(raw)]
    with pytest.raises(ValueError, match="'toy' is registered twice"):
        register_study(dataclasses.replace(toy, order=3))
    with pytest.raises(ValueError, match="an evaluate step needs the tables it fills"):
        register_study(Study(name="bad", method="swim", order=9, tables=(),
                             evaluate=lambda ctx: {}))


def test_every_study_table_is_a_schema_table_written_by_the_evaluate_stage():
    for study in studies.all_studies():
        for table in study.tables:
            assert schema.TABLES[table.name] is table and table.stage == "evaluate"
