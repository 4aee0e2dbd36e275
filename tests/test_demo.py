from tsblib.profiles import profile_from_dict
from tsblib.demo import DEMO_PROFILE, SIGMA, format_table

from conftest import ROOT


def test_demo_profile_is_valid_and_runs_the_four_methods():
    profile = profile_from_dict("demo", DEMO_PROFILE)
    exp = profile.experiment("lenet3")
    assert exp.methods.methods == ("clean", "nit", "nit_bnrecal", "tsb")
    assert exp.evaluation.operating_sigma == SIGMA


def test_demo_table_lists_each_method_with_gaps_and_costs():
    table = format_table(ROOT / "results" / "embedded" / "summary.csv", 0.5)
    lines = table.splitlines()
    assert "sigma = 0.5" in lines[0]
    for method in ("clean", "nit", "nit_bnrecal", "tsb"):
        assert any(line.startswith(method + " ") for line in lines)
    assert "gap own" in table and "map time" in table and "%" in table
