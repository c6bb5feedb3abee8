"""The docstring examples of every `csra_tf` module run and print what they show.

Each module under `csra_tf` whose source holds an example (`>>>`) is imported
and its docstrings are run by `doctest` with ELLIPSIS and NORMALIZE_WHITESPACE.
Examples marked `# doctest: +SKIP` need the network, a dataset download or
several training runs, as the comment next to each says. Modules without
examples are not imported: the programs in `csra_tf.cli` define their absl
flags at import, and several of them in one process would clash.
"""

import doctest
import importlib
import importlib.util
import pkgutil

import pytest

import csra_tf

OPTION_FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _modules_with_examples() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(csra_tf.__path__, "csra_tf."):
        origin = importlib.util.find_spec(info.name).origin
        with open(origin, encoding="utf-8") as file:
            if ">>>" in file.read():
                names.append(info.name)
    return names


MODULES = _modules_with_examples()


class _Failures(doctest.DocTestRunner):
    """A runner that keeps one line per failing example instead of printing."""

    def __init__(self):
        super().__init__(optionflags=OPTION_FLAGS, verbose=False)
        self.lines = []

    def _where(self, test, example):
        line = (test.lineno or 0) + example.lineno + 1
        return f"{test.filename}:{line} ({test.name}): {example.source.strip()}"

    def report_failure(self, out, test, example, got):
        self.lines.append(
            f"{self._where(test, example)}\n  expected: {example.want.strip()!r}"
            f"\n  got:      {got.strip()!r}"
        )

    def report_unexpected_exception(self, out, test, example, exc_info):
        self.lines.append(
            f"{self._where(test, example)}\n  raised {exc_info[0].__name__}: "
            f"{exc_info[1]}"
        )


def test_the_package_has_examples():
    assert len(MODULES) >= 20, MODULES


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    runner = _Failures()
    tests = doctest.DocTestFinder(exclude_empty=True).find(module, name)
    for test in tests:
        runner.run(test, out=lambda text: None, clear_globs=True)
    assert sum(len(test.examples) for test in tests), f"{name}: no example found"
    assert not runner.lines, f"{len(runner.lines)} failing example(s):\n" + "\n".join(
        runner.lines
    )
