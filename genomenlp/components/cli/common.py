"""Shared command plumbing: flags generated from config models, and one-line errors."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import types
import typing
from collections.abc import Callable
from enum import Enum

from pydantic import BaseModel, ValidationError

from genomenlp.components.errors import InputError, describe_validation_error

EXIT_BAD_INPUT = 2


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keep the description's line breaks (defaults are written into each flag's help)."""


def _plain_type(annotation):
    """Strip ``Optional``/``X | None`` to the underlying type."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        options = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return options[0]
    return annotation


def add_config_arguments(parser: argparse.ArgumentParser, model: type[BaseModel], skip: tuple[str, ...] = ()) -> None:
    """Add one ``--field`` flag per config field, with the field's description and default.

    The flag and the field share one name, so a YAML key, a step parameter and a flag agree.
    """
    group = parser.add_argument_group(f"{model.__name__} settings")
    for name, field in model.model_fields.items():
        if name in skip:
            continue
        kind = _plain_type(field.annotation)
        options: dict = {"help": field.description, "default": argparse.SUPPRESS}
        if isinstance(kind, type) and issubclass(kind, Enum):
            options.update(choices=[member.value for member in kind], type=str)
        elif typing.get_origin(kind) is list:
            options.update(nargs="+", type=typing.get_args(kind)[0])
        elif kind is bool:
            options.update(action=argparse.BooleanOptionalAction)
        else:
            options.update(type=kind)
        default = field.default.value if isinstance(field.default, Enum) else field.default
        # argparse formats help with %-interpolation: a literal % must be doubled.
        options["help"] = (field.description or "").replace("%", "%%")
        if "default" not in (field.description or ""):
            options["help"] = f"{options['help']} (default: {default})"
        group.add_argument(f"--{name}", **options)


def add_record_length_argument(parser: argparse.ArgumentParser) -> None:
    """``--max_record_length``: the FASTA readers' cap on one record (memory grows with the longest record)."""
    from genomenlp.components.fasta import DEFAULT_MAX_RECORD_LENGTH

    parser.add_argument("--max_record_length", type=int, default=DEFAULT_MAX_RECORD_LENGTH, metavar="BASES",
                        help="refuse a record longer than this, naming it; memory grows with the longest record "
                        f"(default: {DEFAULT_MAX_RECORD_LENGTH:,})")


def record_length_from_args(args: argparse.Namespace):
    """The context in which every FASTA reader applies ``--max_record_length`` (checked positive first)."""
    from genomenlp.components.fasta import record_length_limit

    if args.max_record_length < 1:
        raise InputError("--max_record_length", "must be a positive number of bases")
    return record_length_limit(args.max_record_length)


def config_from_args(model: type[BaseModel], args: argparse.Namespace, **overrides) -> BaseModel:
    """Build a config from the flags the user gave (others keep the model's defaults)."""
    given = {name: getattr(args, name) for name in model.model_fields if hasattr(args, name)}
    given.update({name: value for name, value in overrides.items() if value is not None})
    return model(**given)


def quiet_libraries() -> None:
    """Keep third-party chatter off the terminal and everything offline."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.getLogger("datasets").setLevel(logging.ERROR)


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that staging space is removed on the way out."""


def _raise_terminated(signum, frame) -> None:
    raise Terminated()


def _on_sigterm_raise() -> Callable[[], None]:
    """Turn SIGTERM into :class:`Terminated` and keep interrupts from being lost (main thread only).

    A signal whose exception is raised inside a weakref callback or ``__del__`` cannot propagate: Python
    prints "Exception ignored in …" with a traceback and carries on, so the interrupt would be lost. The
    unraisable hook hands such an interrupt back to the main thread, where it unwinds the command.

    Returns:
        The restorer of the previous handler and hook.
    """
    import _thread
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    previous_hook = sys.unraisablehook

    def redeliver_interrupts(unraisable) -> None:
        # A moment later and from another thread, so the signal reaches the main thread after this hook.
        if isinstance(unraisable.exc_value, (Terminated, KeyboardInterrupt)):
            number = signal.SIGTERM if isinstance(unraisable.exc_value, Terminated) else signal.SIGINT
            timer = threading.Timer(0.05, _thread.interrupt_main, args=(number,))
            timer.daemon = True
            timer.start()
        else:
            previous_hook(unraisable)

    sys.unraisablehook = redeliver_interrupts

    def restore() -> None:
        signal.signal(signal.SIGTERM, previous)
        sys.unraisablehook = previous_hook

    return restore


def run_command(body: Callable[[list[str] | None], int | None], argv: list[str] | None, prog: str) -> int:
    """Run a command body; bad input becomes one ``error:`` line and exit status 2, never a traceback.

    Failures of the environment (object store unreachable or refusing the credentials, ``ulimit -f``,
    a full disk) are one line too; SIGTERM unwinds like Ctrl-C, so staging space is removed.
    """
    from genomenlp.components.object_store import describe_environment_error

    quiet_libraries()
    restore = _on_sigterm_raise()
    try:
        return body(argv) or 0
    except InputError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
    except ValidationError as error:
        print(f"{prog}: error: --{describe_validation_error(error)}", file=sys.stderr)
    except (KeyboardInterrupt, Terminated) as error:
        print(f"{prog}: interrupted; no output was written", file=sys.stderr)
        return 143 if isinstance(error, Terminated) else 130
    except Exception as error:
        described = describe_environment_error(error)
        if described is None:
            raise
        print(f"{prog}: error: {described}", file=sys.stderr)
    finally:
        restore()
    return EXIT_BAD_INPUT
