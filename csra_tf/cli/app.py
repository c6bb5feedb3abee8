"""Running an absl main as a console script: help, flag errors, user errors.

`run_program(main, program, module)`:
- `--help` lists the program's own flags (absl lists only the flags of the
  `__main__` module, which for a console script is pip's launcher);
- a bad flag value or a `UserError` prints one line,
  `<program>: error: <message>`, and exits with status 2;
- any other exception is a bug and keeps its traceback;
- the program prints its own output only: TensorFlow's native start-up notices
  (hidden when `csra_tf` was imported, see `csra_tf._startup`) and Python
  warnings from other libraries are shown under `--verbosity=1` or higher.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable

from absl import app, flags, logging

from csra_tf._startup import show_native_logs, startup_notices
from csra_tf.errors import UserError

USER_ERROR_STATUS = 2
"""Exit status of a user's mistake (as argparse uses)."""


def _one_line(message: str) -> str:
    return "; ".join(line.strip() for line in str(message).splitlines() if line.strip())


def fail(program: str, message: str) -> None:
    """Prints `<program>: error: <message>` on one line and exits with 2.

    Args:
        program: the console script's name.
        message: what was wrong, with the value received.
    """
    print(f"{program}: error: {_one_line(message)}", file=sys.stderr)
    sys.exit(USER_ERROR_STATUS)


def run_program(
    main: Callable, program: str, module_name: str, *more_modules: str
) -> None:
    """Runs `main` with absl, as the console script `program`.

    Args:
        main: the absl main, `main(argv) -> exit status or None`.
        program: the console script's name (`csra-train`, ...).
        module_name: the module whose flags `--help` lists (its docstring is
            the help's header).
        *more_modules: modules whose flags the program also takes.
    """
    module = sys.modules[module_name]
    flag_values = flags.FLAGS
    for name in (module_name, *more_modules):
        for flag in flag_values.get_flags_for_module(name):
            flag_values.register_key_flag_for_module(sys.argv[0], flag)
    main_module = sys.modules.get("__main__")
    if main_module is not None and module.__doc__:
        main_module.__doc__ = module.__doc__

    def parse(argv):
        try:
            return flag_values(argv)
        except flags.Error as error:
            fail(program, error)

    def guarded_main(argv):
        _show_library_noise(flag_values["verbosity"].value >= 1)
        try:
            return main(argv)
        except UserError as error:
            fail(program, error)

    app.run(guarded_main, flags_parser=parse)


def _show_library_noise(show: bool) -> None:
    """Prints the hidden native notices from now on, or hides other libraries'
    Python warnings."""
    if show:
        show_native_logs(True)
        for line in startup_notices():
            print(line, file=sys.stderr)
        return
    warnings.filterwarnings("ignore")
    warnings.filterwarnings("default", module=r"csra_tf(\.|$)")


def no_arguments(argv, program: str) -> None:
    """Refuses positional arguments for a program that takes none.

    Args:
        argv: absl's leftover arguments (the program name first).
        program: the console script's name.

    Raises:
        UserError: when there are positional arguments.
    """
    if len(argv) > 1:
        raise UserError(
            f"{program} takes flags only (see --help). Received: {argv[1:]}"
        )


def quiet_tensorflow_logs() -> None:
    """Hides TensorFlow's INFO lines (SavedModel writing, ...) unless the user
    asked for a --verbosity."""
    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)


FROZEN_WEIGHTS_VARIABLE = "TF_ONEDNN_ASSUME_FROZEN_WEIGHTS"
"""oneDNN setting: keep each convolution's reordered filter between calls."""


def assume_frozen_weights() -> None:
    """Lets oneDNN keep every convolution's reordered filter for this process.

    With `TF_ONEDNN_ASSUME_FROZEN_WEIGHTS=1` a convolution reorders its filter
    into oneDNN's blocked layout once, on its first call, instead of on every
    call (ResNet-101 at 448 px infers about 8 % faster on 2 cores). The setting
    is read once per process and a function that has run never sees later
    changes of its weights, so only the console scripts of inference-only
    programs (`csra-predict`, `csra-eval`) call this, before anything runs; a
    value the user set is kept.
    """
    os.environ.setdefault(FROZEN_WEIGHTS_VARIABLE, "1")
