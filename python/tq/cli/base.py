"""The typer apps' command classes: every error ends as one line and an exit code.

typer prints usage errors in a boxed panel and lets other exceptions through as
tracebacks. tq's commands instead run in click's non-standalone mode and turn
whatever stops them (a usage error, a `CliError`, a `tq.errors` exception,
also when trio hands it over inside exception groups) into a single
``tq: reason`` line on stderr and the matching `ExitCode`. A fault in tq
itself still shows its traceback: that is a bug to report.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import typer

# typer vendors click and exports none of its exception classes but
# `BadParameter`; these two are the base of every usage error and the error
# that asks for the help text.
from typer._click.exceptions import ClickException, NoArgsIsHelpError
from typer.core import TyperCommand, TyperGroup
from typer.exceptions import Abort

from tq.cli.exits import CliError, ExitCode, exit_code_for
from tq.errors import TqError

__all__ = [
    "OneLineErrorsCommand",
    "OneLineErrorsGroup",
    "make_app",
    "sole_error",
    "stop",
]

MainFunction = Callable[..., Any]


def stop(message: str, code: ExitCode = ExitCode.USAGE) -> NoReturn:
    """Stop the command with a one-line reason and an exit code.

    Args:
        message: The reason; it names what was expected and what came.
        code: The exit code to end with.

    Raises:
        CliError: Always.
    """
    raise CliError(message, code)


def _say(prog_name: str, message: str) -> None:
    first_line = message.strip().splitlines()[0] if message.strip() else "failed"
    typer.echo(f"{prog_name}: {first_line}", err=True)


def _given_value(error: ClickException) -> str:
    """``, got VALUE`` when typer's validation error says what came, else ""."""
    # typer checks option values with pydantic and keeps only the message of
    # its error, which says what was expected; the value is on the cause.
    errors = getattr(error.__cause__, "errors", None)
    if not callable(errors):
        return ""
    found = errors()
    if not found or "input" not in found[0]:
        return ""
    return f", got {found[0]['input']!r}"


def _usage_message(error: ClickException) -> str:
    message = error.format_message().rstrip(".") + _given_value(error)
    ctx = getattr(error, "ctx", None)
    if ctx is None:
        return message
    return f"{message} (see '{ctx.command_path} --help')"


# What ends as one line; anything else is a fault in tq and keeps its traceback.
_REPORTED = (ClickException, Abort, KeyboardInterrupt, CliError, TqError)


def sole_error(error: BaseException) -> BaseException:
    """The one error inside nested exception groups of one error each.

    trio wraps what a task raises in an exception group at every nursery it
    passes through, so an unreachable broker seen inside a nursery arrives as
    a group of a group of one `ConnectionLost`. A group of several errors is
    returned as it is.

    Args:
        error: An exception, perhaps a group.

    Returns:
        The innermost sole exception, or ``error`` itself.
    """
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error


def _exit_with(prog_name: str, error: BaseException) -> NoReturn:
    """Print the one-line reason of ``error`` and exit with its code."""
    if isinstance(error, NoArgsIsHelpError):
        # The help is the message; typer's rich help has printed itself already.
        if error.format_message().strip():
            typer.echo(error.format_message(), err=True)
        sys.exit(ExitCode.USAGE)
    if isinstance(error, ClickException):
        _say(prog_name, _usage_message(error))
        sys.exit(error.exit_code)
    if isinstance(error, Abort | KeyboardInterrupt):
        # click turns a bare Ctrl-C into Abort; one inside a group comes as is.
        _say(prog_name, "aborted")
        sys.exit(ExitCode.INTERRUPTED)
    if isinstance(error, CliError):
        _say(prog_name, error.message)
        sys.exit(error.code)
    assert isinstance(error, TqError)
    _say(prog_name, error.message)
    sys.exit(exit_code_for(error))


def _run_reporting_errors(
    main: MainFunction,
    args: Sequence[str] | None,
    prog_name: str | None,
    standalone_mode: bool,
    extra: dict[str, Any],
) -> Any:
    """Run a click ``main`` and end the process with one line per error."""
    if not standalone_mode:
        return main(args=args, prog_name=prog_name, standalone_mode=False, **extra)
    name = prog_name or "tq"
    try:
        code = main(args=args, prog_name=prog_name, standalone_mode=False, **extra)
    except BaseExceptionGroup as group:
        error = sole_error(group)
        if not isinstance(error, _REPORTED):
            raise
        _exit_with(name, error)
    except _REPORTED as exc:
        _exit_with(name, exc)
    sys.exit(code if isinstance(code, int) else ExitCode.OK)


class OneLineErrorsGroup(TyperGroup):
    """A command group whose errors end as one line and an `ExitCode`."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        """Run the group, reporting any error as one line."""
        extra.update(complete_var=complete_var, windows_expand_args=windows_expand_args)
        return _run_reporting_errors(
            super().main, args, prog_name, standalone_mode, extra
        )


class OneLineErrorsCommand(TyperCommand):
    """A single command whose errors end as one line and an `ExitCode`."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        """Run the command, reporting any error as one line."""
        extra.update(complete_var=complete_var, windows_expand_args=windows_expand_args)
        return _run_reporting_errors(
            super().main, args, prog_name, standalone_mode, extra
        )


def make_app(name: str, help_text: str, epilog: str | None = None) -> typer.Typer:
    """A typer app whose commands report errors as one line.

    Args:
        name: The program name shown in usage lines.
        help_text: What the program is for.
        epilog: Text after the list of commands.

    Returns:
        The app, ready for commands.
    """
    return typer.Typer(
        name=name,
        help=help_text,
        epilog=epilog,
        cls=OneLineErrorsGroup,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
