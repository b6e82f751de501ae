"""What the CLI says when it refuses: the service's errors in terminal words, and one exit code per kind of error.

The service speaks REST (its messages point at ``GET environments`` and at JSON fields); a terminal user typed
``jupyter layenv …`` and options. A command raises :class:`CliError` (or lets a
:class:`~jupyter_layenv.policy.PolicyError` through); :func:`report` prints ``error: …`` once and exits with the
code of its kind (see :class:`ExitCode` and the README's "Command line").
"""

from __future__ import annotations

import difflib
import re
import sys
from enum import IntEnum
from typing import NoReturn

from .clitext import printable_lines
from .policy import PolicyError


class ExitCode(IntEnum):
    """One exit code per kind of outcome, the same for every command."""

    OK = 0
    FAILED = 1  # the work ran and did not succeed (a create job failed or was cancelled)
    USAGE = 2  # bad input: unknown command or option, missing or invalid value, bad name or package spec
    NOT_FOUND = 3  # no such environment (or job)
    NOT_ALLOWED = 4  # refused by a rule or by permissions (the server would answer 403)
    CONFLICT = 5  # exists already, or another job is working on it (409)


_BY_STATUS = {
    400: ExitCode.USAGE,
    413: ExitCode.USAGE,
    422: ExitCode.USAGE,  # an environment.yml no base satisfies
    404: ExitCode.NOT_FOUND,
    403: ExitCode.NOT_ALLOWED,
    409: ExitCode.CONFLICT,
}

_AGAIN = "run `jupyter layenv create --file` again without --build-base"
# REST words -> terminal words, applied in order (the service's messages are written for the REST API).
_REST_TO_CLI = [
    (re.compile(r"\s*\(or `jupyter layenv list`\)"), ""),
    (re.compile(r"GET environments and GET jobs"), "`jupyter layenv list`"),
    (re.compile(r"\bGET environments\b"), "`jupyter layenv list`"),
    (re.compile(r"\(GET policy lists them\)"), "(`jupyter layenv doctor` lists them)"),
    (re.compile(r"\bGET policy\b"), "`jupyter layenv doctor`"),
    (re.compile(r"^'base' is required: the id or path"), "--base is required: the name, id or path"),
    (re.compile(r"^'root' must be"), "--root must be"),
    (re.compile(r"\(format requirements\.txt( or lock)?\)"), r"(--format requirements.txt\1)"),
    (re.compile(r"^packages: "), "--package: "),  # where a bad spec came from: the option, not the JSON field
    (re.compile(r"^(add|remove): "), ""),  # install / uninstall: the spec is quoted right after
    (re.compile(r"^requirements line (\d+): "), r"-r file, line \1: "),
    (re.compile(r"^'display_name' must be"), "--display-name must be"),
    (re.compile(r"^'requirements' must be"), "-r must name"),
    (re.compile(r"^unused_days must be"), "--unused-days must be"),
    (  # health, pip-over-conda: the layer to make instead
        re.compile(r"\(a new environment on the base (\S+) with the package (\S+)\)"),
        r"(`jupyter layenv create NAME --base \1 --package \2`)",
    ),
    (re.compile(r"the job's log \(GET jobs/[0-9a-f]+/log\)"), "the log above"),  # a job followed in the terminal
    (re.compile(r"POST the environment\.yml again \(without build_base\)"), _AGAIN),  # a base built first
    (re.compile(r'"build_base": true builds one'), "--build-base builds one"),  # no base fits the file
    (
        re.compile(r"^(\S+) (is .*)\(its export with format=explicit gives"),  # history of a Conda env
        r"\1 \2(`jupyter layenv export \1 --format explicit` gives",
    ),
    (  # a delete under running kernels: the CLI runs outside the server whose panel the service names
        re.compile(
            r": shut (it|them) down first, then delete \(Kernel > Shut Down Kernel in a notebook, or the "
            r"Running Terminals and Kernels panel\)$"
        ),
        r": shut \1 down first (in the notebooks or servers running \1), or delete anyway with --force (a kernel "
        "then runs on from deleted files)",
    ),
]


class CliError(Exception):
    """A refusal to print as ``error: message`` and exit with ``code``."""

    def __init__(self, message: str, code: ExitCode = ExitCode.USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.code = code

    @classmethod
    def from_policy(cls, err: PolicyError) -> CliError:
        """A service refusal, in CLI words, with the exit code of its HTTP status."""
        return cls(cli_words(err.message), _BY_STATUS.get(err.status, ExitCode.FAILED))


def cli_words(message: str) -> str:
    """``message`` with its REST references (``GET environments``, JSON field names) put as CLI commands/options."""
    for pattern, words in _REST_TO_CLI:
        message = pattern.sub(words, message)
    return message


def report(err: CliError | PolicyError) -> NoReturn:
    """Print the error once, on stderr, and exit with its code."""
    if isinstance(err, PolicyError):
        err = CliError.from_policy(err)
    print(f"error: {printable_lines(err.message)}", file=sys.stderr)
    sys.exit(int(err.code))


def job_failed_line(state: str, error: str | None) -> str:
    """How a job that did not succeed ends on stderr: its error's first line only (the installer's output is in the
    log printed above it), so the error is not printed twice."""
    return f"error: {cli_words((error or state).splitlines()[0])}"


def did_you_mean(word: str, choices: list[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``choices``, or ``""``."""
    close = difflib.get_close_matches(word, choices, n=2, cutoff=0.6)
    return ("; did you mean " + " or ".join(repr(c) for c in close) + "?") if close else ""


STANDARD_OPTIONS = {"help", "h", "help-all", "version"}  # what traitlets answers before the aliases and flags


def check_options(argv: list[str], value_options: set[str], known: set[str]) -> list[str]:
    """``argv`` with every option known (or ``--Class.trait=…``) and given its value; ``--package --index-url=x``
    becomes ``--package=--index-url=x`` so the service refuses that spec by name (argparse would print its usage
    and complain about something else). ``known`` holds the option names without dashes. The positional arguments
    come first, wherever they were typed (``install NAME --dry-run PKG``, ``--package a b``): argparse takes them
    only before or after all the options, and printed its usage for ``PKG``; the command then says what it got."""
    positional: list[str] = []
    checked: list[str] = []
    args = iter(argv)
    takes_values = False  # after a --Class.trait with no "=": its values follow, as traitlets reads them
    for arg in args:
        if arg == "--":
            checked.append(arg)
            checked.extend(args)
            break
        if arg in value_options:
            value = next(args, None)
            if value is None:
                raise CliError(f"{arg} needs a value (see --help)")
            checked.append(f"{arg}={value}" if value.startswith("-") else arg)
            if not value.startswith("-"):
                checked.append(value)
            takes_values = False
            continue
        name = arg.lstrip("-").split("=", 1)[0]
        if arg.startswith("-") and len(arg) > 1 and "." not in name and name not in known:
            dashed = [f"--{option}" if len(option) > 1 else f"-{option}" for option in sorted(known)]
            raise CliError(f"unknown option {arg.split('=', 1)[0]}{did_you_mean(arg.split('=', 1)[0], dashed)} "
                           "(see --help)")  # fmt: skip
        if arg.startswith("-") and len(arg) > 1:
            takes_values = "." in name and "=" not in arg
            checked.append(arg)
        elif takes_values:
            checked.append(arg)
        else:
            positional.append(arg)
    return positional + checked


_TRAIT_ERROR = re.compile(r"The '(?P<trait>\w+)' trait of an? (?P<cls>\w+) instance expected (?P<expected>.+?), not")


def trait_error_words(message: str, aliases: dict) -> str:
    """A traitlets validation error (``The 'format' trait of an ExportApp instance expected any of […], not the str
    'yaml'.``) as ``--format: 'yaml' is not valid; expected one of …``, naming the option the user typed."""
    match = _TRAIT_ERROR.search(message)
    if match is None:
        return message
    trait = f"{match['cls']}.{match['trait']}"
    option = match["trait"].replace("_", "-")
    for names, target in aliases.items():
        if (target if isinstance(target, str) else target[0]) == trait:
            option = names if isinstance(names, str) else names[-1]
    expected = re.sub(r"^any of \[(.*)\]$", r"one of \1", match["expected"])
    got = message[match.end() :].strip().rstrip(".").split(" ", 2)[-1]  # "the str 'yaml'" -> "'yaml'"
    return f"--{option}: {got} is not valid; expected {expected}"
