"""The package imports one way (docs/architecture.md): checked from the source."""

import ast
import os
import pathlib
import subprocess
import sys

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "csra_tf"

# Each top-level package or module of csra_tf and its layer; a unit may import
# units of its own layer or below, never above (function-local imports too).
LAYERS = {
    "_startup": 0,
    "errors": 0,
    "config": 0,
    "layers": 0,
    "metrics": 0,
    "convert": 1,
    "optimization": 1,
    "data": 1,
    "backbones": 1,
    "models": 2,
    "training_free": 2,
    "run_folder": 3,
    "training": 3,
    "acceleration": 3,
    "inference": 4,
    "export": 4,
    "importer": 4,
    "studies": 5,
    "benchmarks": 5,
    "cli": 6,
}


def _unit(path: pathlib.Path) -> str | None:
    """The top-level unit a source file belongs to (None for csra_tf/__init__)."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return None if parts == ("__init__",) else parts[0]


def _imported_units(tree: ast.AST) -> set[str]:
    units = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "csra_tf":  # units; `__version__` is the root's
                names = [
                    f"csra_tf.{alias.name}"
                    for alias in node.names
                    if not alias.name.startswith("__")
                ]
            else:
                names = [node.module]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "csra_tf" and len(parts) > 1:
                units.add(parts[1])
    return units


def _import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        unit = _unit(path)
        if unit is None:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        graph.setdefault(unit, set()).update(_imported_units(tree) - {unit})
    return graph


def test_every_unit_has_a_layer():
    assert set(_import_graph()) <= set(LAYERS), set(_import_graph()) - set(LAYERS)


def test_no_upward_import():
    upward = [
        f"{source} (layer {LAYERS[source]}) imports {target} (layer {LAYERS[target]})"
        for source, targets in _import_graph().items()
        for target in sorted(targets)
        if LAYERS[target] > LAYERS[source]
    ]
    assert not upward, "\n".join(upward)


def test_no_import_cycle():
    graph = _import_graph()
    state: dict[str, str] = {}
    cycles = []

    def visit(unit, stack):
        state[unit] = "open"
        for target in sorted(graph.get(unit, ())):
            if state.get(target) == "open":
                cycles.append(" -> ".join([*stack[stack.index(target) :], target]))
            elif target not in state:
                visit(target, [*stack, target])
        state[unit] = "done"

    for unit in sorted(graph):
        if unit not in state:
            visit(unit, [unit])
    assert not cycles, cycles


def test_the_checker_sees_function_local_and_upward_imports():
    tree = ast.parse(
        "def f():\n    from csra_tf.training import train\n"
        "from csra_tf import run_folder\nimport csra_tf.cli.csra_train\n"
    )
    assert _imported_units(tree) == {"training", "run_folder", "cli"}


def test_light_imports():
    # `import csra_tf` registers the Keras objects csra-tf saves (layers,
    # models, backbones, optimization, metrics), but loads no data or training
    # code and no TensorFlow Datasets. `csra_tf.layers` and `csra_tf.config`
    # run the same package import first, so one fresh process checks all three.
    code = (
        "import sys, csra_tf.layers, csra_tf.config\n"
        "heavy = [m for m in ('tensorflow_datasets', 'csra_tf.data', "
        "'csra_tf.training', 'csra_tf.run_folder', 'csra_tf.export') "
        "if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert result.stdout.strip() == "", f"csra_tf loads {result.stdout.strip()}"
