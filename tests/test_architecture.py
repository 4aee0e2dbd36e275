"""The library's imports go one way (DESIGN section 8): no import circle, the schema imports no
other part of tsblib, the device models know nothing of methods, the method specs nothing of
their execution code, and neither of stages, results or figures. Edges are the import
statements of each module, function-local ones included, `if TYPE_CHECKING:` ones not
(`tsblib.pipeline.code_deps.imports`)."""
from __future__ import annotations

import pytest

from tsblib.pipeline.code_deps import imports, library_modules

MODULES = library_modules()
GRAPH = {m: imports(m, statements_only=True) for m in MODULES}


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                part.append(w)
                if w == v:
                    break
            if len(part) > 1:
                found.append(sorted(part))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_check_finds_a_circle():
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _circles({"a": {"b"}, "b": set()}) == []


def test_no_import_circle_in_the_library():
    assert _circles(GRAPH) == []


def test_the_schema_imports_no_other_part_of_the_library():
    assert GRAPH["tsblib.config"] == set()


@pytest.mark.parametrize("lower, upper", [
    ("tsblib.devices", ("tsblib.methods", "tsblib.stages", "tsblib.pipeline", "tsblib.profiles",
                        "tsblib.report", "tsblib.figures", "tsblib.mapping")),
    ("tsblib.writeverify", ("tsblib.devices", "tsblib.methods")),
    ("tsblib.datasets", ("tsblib.data", "tsblib.devices", "tsblib.methods", "tsblib.profiles",
                         "tsblib.stages")),
    ("tsblib.variation", ("tsblib.tsb", "tsblib.methods")),
    ("tsblib.methods", ("tsblib.execution", "tsblib.stages", "tsblib.pipeline", "tsblib.profiles",
                        "tsblib.report", "tsblib.figures", "tsblib.robustness", "tsblib.verdicts")),
    ("tsblib.execution", ("tsblib.stages", "tsblib.pipeline", "tsblib.profiles", "tsblib.report",
                          "tsblib.figures", "tsblib.robustness", "tsblib.verdicts")),
])
def test_lower_layers_do_not_import_upper_ones(lower, upper):
    def within(module: str, package: str) -> bool:
        return module == package or module.startswith(package + ".")

    wrong = {m: sorted(t for t in GRAPH[m] if any(within(t, u) for u in upper))
             for m in MODULES if within(m, lower)}
    assert not {m: t for m, t in wrong.items() if t}, wrong


def test_tests_mirror_the_packages():
    from tsblib.pipeline.code_deps import ROOT

    packages = sorted(p.name for p in (ROOT / "tsblib").iterdir()
                      if (p / "__init__.py").is_file())
    assert packages, "no subpackage found"
    missing = [p for p in packages if not list((ROOT / "tests" / p).glob("test_*.py"))]
    assert not missing, f"tsblib packages without a tests/<package>/ folder of tests: {missing}"
