"""The method registry: every method declares what the pipeline needs, and a new method module
is picked up without touching config, stages, report or figures."""
import dataclasses

import pytest

from tsblib.config import ConfigError

from tsblib.profiles import profile_from_dict
from tsblib.methods import registry
from tsblib.methods.registry import MethodSpec, all_methods, get_method, label, ordered, register, style
from tsblib.package_scan import RegistryError


def test_every_method_of_the_paper_is_registered_with_a_deployment_step():
    methods = all_methods()
    assert {"clean", "nit", "nit_bnrecal", "swim", "full_wv", "nft_ovf", "nft_irs", "correctnet",
            "tsb"} <= set(methods)
    for spec in methods.values():
        assert spec.evaluate is not None and spec.label and spec.color and spec.marker
        # a method trains exactly when it declares an objective, and then deploys its own run
        assert spec.trains == (spec.trained_from == spec.name)
    orders = [s.order for s in ordered()]
    assert orders == sorted(orders) and len(set(orders)) == len(orders)


def test_claims_baselines_and_write_verify_flags():
    assert get_method("nit").claims_baseline and not get_method("nit").write_verify
    assert get_method("full_wv").write_verify and get_method("swim").write_verify
    assert not get_method("tsb").claims_baseline
    assert get_method("nft_ovf").forwards(None) == 4.0  # the noisy forward and three OVF forwards
    assert get_method("nit").forwards(None) == 1.0


def test_labels_and_styles_cover_extra_rows():
    assert label("tsb_backbone_only") == "TSB backbone, no block"
    assert label("nit") == "NIT (noise-injection training)"
    assert style("tsb")[0] == get_method("tsb").color
    assert label("not_a_method") == "not_a_method"


def test_unknown_method_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown method 'magic'; known methods: .*'nit'"):
        get_method("magic")


@dataclasses.dataclass(frozen=True)
class _Params:
    strength: float = 1.0

    def validate(self) -> None:
        if self.strength < 0:
            raise ConfigError(f"methods.toy.strength = {self.strength} is not allowed")


def test_a_new_method_is_configured_through_the_registry(monkeypatch):
    monkeypatch.setitem(registry.METHODS, "toy", MethodSpec(
        name="toy", label="toy", color="#000000", marker="o", order=99, description="test only",
        trained_from="nit", evaluate=lambda ctx: iter(()), params=_Params))
    raw = {"models": {"lenet3": {}},
           "methods": {"methods": ["nit", "toy"], "toy": {"strength": 2.0}}}
    exp = profile_from_dict("t", raw).experiment("lenet3")
    assert exp.methods.of("toy") == _Params(2.0)
    with pytest.raises(ConfigError, match="methods.toy.strength = -1.0"):
        profile_from_dict("t", {**raw, "methods": {"methods": ["toy"], "toy": {"strength": -1.0}}})
    with pytest.raises(ConfigError, match=r"methods.toy.power is not a known parameter.*strength"):
        profile_from_dict("t", {**raw, "methods": {"methods": ["toy"], "toy": {"power": 1}}})


def test_register_rejects_inconsistent_specs():
    with pytest.raises(ValueError, match="trained_from must be its own name"):
        register(MethodSpec(name="bad", label="bad", color="#000", marker="o", order=98,
                            description="", trained_from="bad"))
    with pytest.raises(ValueError, match="registered twice"):
        register(dataclasses.replace(get_method("nit"), label="another NIT"))
    nit = get_method("nit")
    with pytest.raises(ValueError, match=r"'bad': its MethodSpec lacks evaluate \(how it deploys"):
        register(dataclasses.replace(nit, name="bad", trained_from="nit", objective=None,
                                     evaluate=None))
    with pytest.raises(ValueError, match="'bad': its MethodSpec lacks label, description"):
        register(dataclasses.replace(nit, name="bad", trained_from="nit", objective=None,
                                     label="", description=""))
    with pytest.raises(ValueError, match="'bad': plan_percents without a plan"):
        register(dataclasses.replace(nit, name="bad", trained_from="nit", objective=None,
                                     plan_percents=lambda exp: (1.0,)))
    assert "bad" not in registry.METHODS


def test_clean_training_takes_its_own_recipe_and_the_other_runs_keep_trains():
    from tsblib.config import Optimizer
    from tsblib.methods.studies import training_jobs

    raw = {"models": {"lenet3": {}}, "train": {"optimizer": "adam", "lr": 3e-3},
           "methods": {"methods": ["clean", "nit", "tsb"],
                       "clean": {"optimizer": "sgd", "lr": 0.05, "weight_decay": 5e-4}}}
    exp = profile_from_dict("p", raw).experiments[0]
    jobs = {j.run: j.cfg for j in training_jobs(exp)}
    assert (jobs["clean"].optimizer, jobs["clean"].lr, jobs["clean"].weight_decay) == \
        (Optimizer.SGD, 0.05, 5e-4)
    assert jobs["clean"].epochs == exp.train.epochs and jobs["clean"].augment == exp.train.augment
    assert jobs["nit"] == exp.train
    # its own epochs, the other runs keep train.epochs
    raw["methods"]["clean"]["epochs"] = exp.train.epochs + 3
    longer = {j.run: j.cfg for j in training_jobs(profile_from_dict("p", raw).experiments[0])}
    assert (longer["clean"].epochs, longer["nit"].epochs) == (exp.train.epochs + 3,
                                                              exp.train.epochs)
    # unset, clean training is the profile's recipe
    raw["methods"].pop("clean")
    assert {j.run: j.cfg for j in training_jobs(profile_from_dict("p", raw).experiments[0])}[
        "clean"] == exp.train


def test_a_method_s_mapping_plan_is_its_spec_s(monkeypatch):
    from tsblib.deployment import programmed_once, verified_block, verify_all, verify_top
    from tsblib.stages.mapping import verify_plan

    exp = profile_from_dict("t", {"models": {"lenet3": {}}, "methods": {
        "methods": ["nit", "swim", "full_wv", "tsb"]}}).experiment("lenet3")
    n = programmed_once(exp).weights
    assert verify_plan(exp, "no_verify") == programmed_once(exp)
    assert verify_plan(exp, "nit") == programmed_once(exp)  # no plan declared: programmed once
    assert verify_plan(exp, "tsb_backbone_only") == programmed_once(exp)  # an extra row
    assert verify_plan(exp, "full_wv") == verify_all(exp) == type(verify_all(exp))(n, n, 0)
    assert verify_plan(exp, "swim", 1.0) == verify_top(exp, 1.0)
    assert verify_plan(exp, "swim", 1.0).verified == round(n / 100)
    block = verify_plan(exp, "tsb")
    assert block == verified_block(exp) and block.read_back == n and 0 < block.verified < n
    monkeypatch.setitem(registry.METHODS, "toy", MethodSpec(
        name="toy", label="toy", color="#000000", marker="o", order=99, description="test only",
        trained_from="nit", evaluate=lambda ctx: iter(()), plan=verify_all))
    assert verify_plan(exp, "toy") == verify_all(exp)
    with pytest.raises(ValueError, match="unknown method 'tsb_width99'"):
        verify_plan(exp, "tsb_width99")  # a variant's plan is its own (`Variant.plan`)


def test_a_new_method_s_robustness_deployment_joins_the_stage(monkeypatch):
    """The robustness stage runs whatever the methods declare: made ready once, told each
    scenario before its conditions, evaluated under each condition's device model."""
    from types import SimpleNamespace

    from tsblib.deployment import programmed_once
    from tsblib.chipstats import summarize
    from tsblib.execution.context import Deployed
    from tsblib.methods.registry import RobustSpec, robust_deployments
    from tsblib.robustness import evaluate_robustness

    calls = []

    def deploy(ctx):
        calls.append(("ready", ctx.chips, ctx.sigma))

        def chips(device):
            calls.append(("chips", device.label))
            return summarize([0.5, 0.7])

        return Deployed(chips, 0.9, lambda scenario: calls.append(("scenario", scenario.name)))

    monkeypatch.setitem(registry.METHODS, "toy", MethodSpec(
        name="toy", label="toy", color="#000000", marker="o", order=99, description="test only",
        trained_from="nit", evaluate=lambda ctx: iter(()),
        robustness=(RobustSpec("toy_robust", deploy, programmed_once, label="toy, robust"),)))
    assert list(robust_deployments())[-1] == "toy_robust"
    raw = {"models": {"lenet3": {}}, "methods": {"methods": ["nit"]},
           "robustness": {"chips": 3, "methods": ["toy_robust"],
           "scenarios": [{"name": "a", "device": {"model": "gaussian"}},
                         {"name": "b", "device": {"model": ["gaussian", "read_noise"]}}]}}
    exp = profile_from_dict("t", raw).experiment("lenet3")
    points = list(evaluate_robustness(SimpleNamespace(exp=exp, progress=False)))
    assert [(p.condition.scenario.name, p.method, p.clean_acc) for p in points] == \
        [("a", "toy_robust", 0.9), ("b", "toy_robust", 0.9)]
    sigma = exp.evaluation.operating_sigma
    assert calls == [("ready", 3, sigma), ("scenario", "a"), ("chips", "gaussian"),
                     ("scenario", "b"), ("chips", "gaussian+read_noise")]
    with pytest.raises(ConfigError, match=r"robustness.methods = 'toy' .*'toy_robust'"):
        profile_from_dict("t", {**raw, "robustness": {"methods": ["toy"]}})


def test_a_new_method_s_block_fine_tuning_joins_the_finetune_stage(monkeypatch, tmp_path):
    """The finetune stage chooses the block's settings once per model and runs every listed
    method's own `finetune`, in figure order, with them; it writes their rows."""
    from types import SimpleNamespace

    from tsblib.stages import finetune as stages
    from tsblib.paths import ProfilePaths

    calls = []

    def toy_finetune(ctx):
        calls.append((ctx.exp.model, ctx.lr, ctx.epochs, ctx.backbone))
        return [{"model": ctx.exp.model, "method": "toy", "sigma": 0.5, "chips": 2,
                 "mode": "per_chip", "lr": ctx.lr, "epochs": ctx.epochs, "images": 10,
                 "bn_images": 0, "seconds": 1.0, "seconds_per_chip": 0.5}]

    monkeypatch.setitem(registry.METHODS, "toy", MethodSpec(
        name="toy", label="toy", color="#000000", marker="o", order=99, description="test only",
        trained_from="nit", evaluate=lambda ctx: iter(()), finetune=toy_finetune))
    profile = profile_from_dict("t", {"models": {"lenet3": {}},
                                      "methods": {"methods": ["nit", "toy"]}})
    monkeypatch.setattr(stages.io, "check_checkpoints", lambda *a, **k: None)
    monkeypatch.setattr(stages, "prepared_data", lambda paths, exp: "data")
    monkeypatch.setattr(stages, "check_finetune_images", lambda *a: None)
    monkeypatch.setattr(stages, "load_trained_model", lambda *a: ("backbone", {}))
    monkeypatch.setattr(stages, "select_settings", lambda *a: SimpleNamespace(
        lr=0.01, epochs=3, rows=[]))
    paths = ProfilePaths("t", tmp_path)
    stages.finetune_stage(profile, paths, progress=False)
    assert calls == [("lenet3", 0.01, 3, "backbone")]
    assert "toy" in paths.result("finetune.csv").read_text()


def test_every_hook_resolves_to_a_function_of_its_execution_module():
    import tsblib.execution  # noqa: F401 - what a stage that runs method code imports
    from tsblib.methods.registry import Hook
    from tsblib.methods.studies import all_studies

    hooks = [h for s in all_methods().values()
             for h in (s.objective, s.evaluate, s.finetune, *(r.deploy for r in s.robustness))]
    hooks += [h for s in all_studies() for h in (s.finetune, s.evaluate)]
    hooks = [h for h in hooks if h is not None]
    assert hooks and all(isinstance(h, Hook) for h in hooks)
    assert all(callable(h.resolve()) for h in hooks)


@pytest.mark.parametrize("hook, part", [
    (registry.Hook("tsblib.execution.no_such_module", "evaluate"), "no_such_module.py is missing"),
    (registry.Hook("tsblib.execution.nit", "no_such_function"), "is not defined in"),
    (registry.Hook("tsblib.other.nit", "evaluate"), "names no module of tsblib.execution"),
])
def test_a_spec_whose_hook_names_missing_code_is_refused_when_it_registers(hook, part):
    spec = MethodSpec(name="toy_hook", label="toy", color="#000000", marker="o", order=98,
                      description="test only", trained_from="nit", evaluate=hook)
    with pytest.raises(RegistryError, match="method 'toy_hook'") as err:
        register(spec)
    assert part in str(err.value) and "toy_hook" not in registry.METHODS


def test_a_hook_runs_only_in_a_process_that_imported_the_execution_package():
    """A stage that runs method code imports `tsblib.execution` (so dvc.yaml lists it); a hook
    called without it is refused rather than silently loading code the stage's dependencies do
    not name. Checked in a fresh interpreter, since this one has imported the package."""
    import subprocess
    import sys

    code = ("from tsblib.methods.registry import get_method\n"
            "try:\n    get_method('nit').objective(None)\n"
            "except RuntimeError as exc:\n    print('refused:', exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.startswith("refused:") and "tsblib.execution was imported" in out


def test_a_new_method_is_its_spec_and_its_code(library_copy):
    """A toy method added as two files to a copy of the library, its spec under tsblib/methods/
    and its code under tsblib/execution/: the registry finds it, its hook runs its code, and the
    stages that only parse a profile do not depend on that code (dvc.yaml's lists)."""
    import subprocess
    import sys

    from tsblib.pipeline.code_deps import code_deps, stage_entries

    tmp_path = library_copy
    (tmp_path / "tsblib" / "methods" / "toy.py").write_text(
        '"""A toy method (test only)."""\n'
        "from tsblib.methods.registry import Implementation, MethodSpec, register\n\n"
        'IMPL = Implementation("toy")\n'
        'SPEC = register(MethodSpec(name="toy", label="toy", color="#000000", marker="o",\n'
        '                           order=99, description="test only", trained_from="nit",\n'
        "                           evaluate=IMPL.evaluate))\n")
    (tmp_path / "tsblib" / "execution" / "toy.py").write_text(
        '"""The toy method\'s code (test only)."""\n\n\n'
        "def evaluate(ctx):\n"
        '    return f"toy deployed on {ctx}"\n')
    code = ("import tsblib, tsblib.execution\n"
            "from tsblib.methods.registry import get_method\n"
            "print(tsblib.__file__)\n"
            "print(get_method('toy').evaluate('chips'))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=tmp_path, check=True).stdout.splitlines()
    assert out == [str(tmp_path / "tsblib" / "__init__.py"), "toy deployed on chips"]
    for stage, entry in stage_entries().items():
        deps = code_deps(entry, tmp_path)
        assert "tsblib/methods" in deps, stage  # every stage parses the specs
        assert ("tsblib/execution" in deps) == (stage in {"recipes", "train", "finetune",
                                                          "evaluate", "robustness"}), stage
