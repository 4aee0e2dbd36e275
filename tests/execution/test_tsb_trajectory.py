"""The training-cost trajectory (tsblib/methods/tsb_trajectory.py): NIT's state after every
epoch and TSB from backbones of several ages, on the same chips as every other method; LeNet-3
on a few hundred embedded digits, on the CPU."""
import csv

import pytest
import torch
import yaml

from tsblib import io
from tsblib.config import ConfigError
from tsblib.profiles import load_profile, profile_from_dict
from tsblib.paths import ProfilePaths
from tsblib.schema import TRAINING_EXTRA, TRAJECTORY, TRAJECTORY_CHIPS
from tsblib.pipeline import run_stage
from tsblib.methods.studies import training_jobs
from tsblib.methods.tsb_trajectory import (AGES_CHECKPOINT, age_epochs, backbones,
                                           trajectory_epochs)

EPOCHS = 4
PROFILE = {
    "runtime": {"device": "cpu"},
    "data": {"dataset": "mnist-embedded", "train_limit": 300, "test_limit": 100},
    "models": {"lenet3": {}},
    "train": {"epochs": EPOCHS, "batch_size": 50, "val_chips": 5},
    # ages 0.25, 0.5, 1.0 of 4 epochs: epochs 1, 2, 4; the early fraction 0.2 is epoch 1 again
    "methods": {"methods": ["clean", "nit", "nit_bnrecal", "tsb", "tsb_bnrecal"],
                "tsb_early_fraction": 0.2, "tsb_ages": [0.25, 0.5, 1.0], "tsb_annealed": True,
                "tsb_ages_bnrecal": True,
                "nit_bnrecal": {"images": 100}},
    "tsb": {"width": 8, "epochs": 1, "lr": [1e-2], "batch_size": 50, "chip_batch": 2},
    "evaluation": {"sigmas": [0.0, 0.4], "operating_sigma": 0.4, "chips": 4, "tsb_chips": 3,
                   "chip_batch": 2, "batch_size": 100},
    "ablation": {"widths": [], "placements": [], "sharings": [], "modes": [], "sigma_reads": []},
}


def _rows(path):
    with open(path) as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("trajectory")
    params = tmp / "params.yaml"
    params.write_text(yaml.safe_dump({"profile": "t", "profiles": {"t": PROFILE}}))
    profile = load_profile(params, "t")
    paths = ProfilePaths("t", tmp)
    for stage in ("prepare", "train", "finetune", "evaluate"):  # scoped: declared params only
        run_stage(stage, profile, paths, progress=False)
    return profile, paths


def test_backbone_ages_are_distinct_epochs_with_the_early_fraction_among_them():
    exp = profile_from_dict("t", {**PROFILE, "methods": {**PROFILE["methods"],
                                                         "tsb_ages": [0.1, 0.3, 0.5]}}
                            ).experiment("lenet3")
    # 0.1 and 0.2 (the early fraction, added) both give epoch 1 of 4: evaluated once
    assert age_epochs(exp, 4) == [1, 2]
    assert [b.key for b in backbones(exp, 4)] == ["epoch:1", "epoch:2", "annealed:1"]
    assert [b.key for b in backbones(exp, 20)] == ["epoch:2", "epoch:4", "epoch:6", "epoch:10",
                                                   "annealed:4"]


def test_a_thinned_trajectory_keeps_the_ages_and_the_last_epoch():
    exp = profile_from_dict("t", {**PROFILE, "evaluation": {**PROFILE["evaluation"],
                                                            "trajectory_every": 3}}
                            ).experiment("lenet3")
    # every 3rd of 12 epochs, and the ages 0.25, 0.5, 1.0 and the early fraction 0.2 (3, 6, 12, 3)
    assert trajectory_epochs(exp, 12) == [3, 6, 9, 12]
    # of 10 epochs the ages give epochs 2 (0.2), 3 (0.25), 5 and 10
    assert trajectory_epochs(exp, 10) == [2, 3, 5, 6, 9, 10]
    assert trajectory_epochs(profile_from_dict("t", PROFILE).experiment("lenet3"), 4) == [1, 2, 3, 4]


@pytest.mark.parametrize("ages", [[0.0], [0.2, 1.01], [-0.5]])
def test_bad_ages_are_refused(ages):
    with pytest.raises(ConfigError, match=r"methods.tsb_ages contains .*fractions in \(0, 1\]"):
        profile_from_dict("t", {**PROFILE, "methods": {**PROFILE["methods"], "tsb_ages": ages}})


def test_train_saves_every_nit_epoch_and_the_annealed_backbone(run):
    profile, paths = run
    lenet = paths.for_model("lenet3")
    states = io.load_checkpoint(paths.train_checkpoint("lenet3", "nit_epochs"), "train")
    assert states["method"] == "nit_epochs" and sorted(states["states"]) == [1, 2, 3, 4]
    nit = io.load_checkpoint(paths.train_checkpoint("lenet3", "nit"), "train")
    early = io.load_checkpoint(paths.train_checkpoint("lenet3", "tsb_backbone"), "train")
    for name, w in nit["state"].items():
        assert torch.equal(w, states["states"][nit["selected_epoch"]][name])
        assert torch.equal(early["state"][name], states["states"][1][name])
    assert states["fingerprint"] == nit["fingerprint"]
    annealed = io.load_checkpoint(paths.train_checkpoint("lenet3", "tsb_backbone_annealed"), "train")
    assert annealed["epochs"] == 1 and annealed["fingerprint"] != nit["fingerprint"]
    # a one-epoch schedule annealed to its end is not NIT's first epoch of four
    assert not all(torch.equal(w, early["state"][n]) for n, w in annealed["state"].items())
    assert not any("seconds" in str(k) for k in (*states, *annealed))
    curve = _rows(lenet.result(TRAINING_EXTRA.name))
    assert tuple(curve[0]) == TRAINING_EXTRA.result_columns  # seconds: in timing/
    assert [(r["method"], r["epoch"], r["selected"]) for r in curve] == \
        [("tsb_backbone_annealed", "1", "True")]
    assert {r["method"] for r in _rows(lenet.result("training.csv"))} == {"clean", "nit"}


def test_trajectory_has_every_epoch_and_every_backbone(run):
    profile, paths = run
    rows = _rows(paths.for_model("lenet3").result(TRAJECTORY.name))
    assert tuple(rows[0]) == TRAJECTORY.columns
    by_curve = {c: [(r["backbone"], int(r["epochs"])) for r in rows if r["curve"] == c]
                for c in ("nit", "nit_bnrecal", "tsb", "tsb_bnrecal")}
    assert by_curve["nit"] == by_curve["nit_bnrecal"] == [("epoch", e) for e in range(1, EPOCHS + 1)]
    assert by_curve["tsb"] == [("epoch", 1), ("epoch", 2), ("epoch", 4), ("annealed", 1)]
    assert by_curve["tsb_bnrecal"] == by_curve["tsb"]  # methods.tsb_ages_bnrecal
    assert len(rows) == 2 * EPOCHS + 2 * 4
    for r in rows:
        assert r["model"] == "lenet3" and float(r["sigma"]) == 0.4 and r["chips"] == "3"
        assert 0 <= float(r["acc_mean"]) <= 1 and 0 <= float(r["clean_acc"]) <= 1
    # the backbone's noise-free accuracy is NIT's at that epoch
    clean = {(r["curve"], r["backbone"], r["epochs"]): r["clean_acc"] for r in rows}
    assert clean[("tsb", "epoch", "2")] == clean[("nit", "epoch", "2")]
    blocks = io.load_checkpoint(paths.finetune_checkpoint("lenet3", AGES_CHECKPOINT), "finetune")
    assert sorted(blocks["blocks"]) == ["annealed:1", "epoch:1", "epoch:2", "epoch:4"]
    assert sorted(blocks["bnrecal_blocks"]) == sorted(blocks["bnrecal_buffers"]) == \
        sorted(blocks["blocks"])
    assert all(w.shape[0] == 3 for key in ("blocks", "bnrecal_blocks", "bnrecal_buffers")
               for b in blocks[key].values() for w in b.values())


def test_trajectory_chips_are_the_evaluation_chips(run):
    """Paired chips: the NIT curve at NIT's deployed epoch and the TSB curve on the stated
    backbone repeat, chip for chip, NIT's and TSB's accuracies in chips.csv."""
    profile, paths = run
    lenet = paths.for_model("lenet3")
    chips = _rows(lenet.result(TRAJECTORY_CHIPS.name))
    assert tuple(chips[0]) == TRAJECTORY_CHIPS.columns
    evaluation = _rows(lenet.result("chips.csv"))
    nit_epoch = io.load_checkpoint(paths.train_checkpoint("lenet3", "nit"), "train")["selected_epoch"]

    def traj(curve, backbone, epochs):
        return [float(r["acc"]) for r in chips
                if (r["curve"], r["backbone"], r["epochs"]) == (curve, backbone, str(epochs))]

    def deployed(method):
        return [float(r["acc"]) for r in evaluation
                if r["method"] == method and float(r["sigma"]) == 0.4][:3]

    assert len(deployed("nit")) == 3
    assert traj("nit", "epoch", nit_epoch) == deployed("nit")
    assert traj("nit_bnrecal", "epoch", nit_epoch) == deployed("nit_bnrecal")
    assert traj("tsb", "epoch", 1) == deployed("tsb")  # the stated backbone, the same blocks
    assert traj("tsb_bnrecal", "epoch", 1) == deployed("tsb_bnrecal")
    stats = {(r["curve"], r["backbone"], r["epochs"]): float(r["acc_mean"])
             for r in _rows(lenet.result(TRAJECTORY.name))}
    assert stats[("nit", "epoch", str(nit_epoch))] == pytest.approx(sum(deployed("nit")) / 3)


def test_train_resumes_from_the_saved_runs(run, monkeypatch):
    """A rerun of the train stage reuses every saved run, the per-epoch states and the annealed
    backbone included; without the per-epoch states NIT trains again."""
    import tsblib.stages.train as stages

    profile, paths = run
    calls = []
    real = stages._train_one
    monkeypatch.setattr(stages, "_train_one", lambda spec, *a, **k: calls.append(a[-2]) or
                        real(spec, *a, **k))
    run_stage("train", profile, paths, progress=False)
    assert calls == []
    epochs = paths.train_checkpoint("lenet3", "nit_epochs")
    before = epochs.read_bytes()
    epochs.unlink()
    run_stage("train", profile, paths, progress=False)
    assert calls == ["lenet3/nit"] and epochs.read_bytes() == before
    assert [j.run for j in training_jobs(profile.experiment("lenet3"))] == \
        ["clean", "nit", "tsb_backbone_annealed"]


def test_parallel_training_runs_equal_sequential_ones(tmp_path, capfd):
    """runtime.train_workers trains the runs of one model side by side in worker processes,
    one thread each; every saved checkpoint is the one a sequential one-thread run saves, and
    the workers report every epoch to the parent's progress bar."""
    profile_raw = {**PROFILE, "train": {**PROFILE["train"], "epochs": 2}}
    saved, threads = {}, torch.get_num_threads()
    for workers in (1, 2):
        root = tmp_path / f"w{workers}"
        root.mkdir()
        raw = {**profile_raw, "runtime": {"device": "cpu", "threads": workers,
                                          "train_workers": workers}}
        params = root / "params.yaml"
        params.write_text(yaml.safe_dump({"profile": "t", "profiles": {"t": raw}}))
        profile = load_profile(params, "t")
        paths = ProfilePaths("t", root)
        run_stage("prepare", profile, paths, progress=False)
        capfd.readouterr()
        run_stage("train", profile, paths, progress=workers == 2)
        if workers == 2:
            total = sum(j.cfg.epochs for j in training_jobs(profile.experiment("lenet3")))
            err = capfd.readouterr().err
            assert f"{total}/{total}" in err and "epoch" in err, err[-500:]
        saved[workers] = {f.name: io.load_checkpoint(f, "train")
                          for f in sorted(paths.train_checkpoint_dir("lenet3").glob("*.pt"))}
        torch.set_num_threads(threads)
    assert sorted(saved[1]) == sorted(saved[2]) and len(saved[1]) >= 4
    for name, ckpt in saved[1].items():
        other = saved[2][name]
        states = ckpt.get("states") or {0: ckpt["state"]}
        others = other.get("states") or {0: other["state"]}
        for epoch, state in states.items():
            for key, value in state.items():
                assert torch.equal(value, others[epoch][key]), (name, epoch, key)


def test_force_retrains_and_a_damaged_saved_run_is_named(run, monkeypatch, caplog):
    """`dvc repro --force` (or TSB_RETRAIN=1) retrains every run instead of reusing saved ones;
    a truncated saved run is reported when it is replaced."""
    import tsblib.stages.train as stages

    profile, paths = run
    calls = []
    real = stages._train_one
    monkeypatch.setattr(stages, "_train_one", lambda spec, *a, **k: calls.append(a[-2]) or
                        real(spec, *a, **k))
    nit = paths.train_checkpoint("lenet3", "nit")
    before = nit.read_bytes()
    nit.write_bytes(before[: len(before) // 2])  # truncated, as by a kill mid-write elsewhere
    with caplog.at_level("WARNING"):
        run_stage("train", profile, paths, progress=False)
    assert calls == ["lenet3/nit"] and nit.read_bytes() == before
    assert "lenet3/nit: the saved run cannot be reused and is trained again" in caplog.text
    monkeypatch.setenv("TSB_RETRAIN", "1")
    run_stage("train", profile, paths, progress=False)
    assert calls[1:] == ["lenet3/clean", "lenet3/nit", "lenet3/tsb_backbone_annealed"]
    assert nit.read_bytes() == before  # the same run again, bit for bit
