"""The `privsynth` entry point: the parser of every subcommand, and one error line (no
traceback) for a user's mistake."""

import argparse
import os
import signal
import sys

from cli import attack, certs, ledger, phantom, prior, reader_study, run, sweep
from common.errors import UserError
from evaluation.command import add_evaluate_arguments, run_evaluate

# In the order `privsynth --help` lists them.
COMMANDS = (run, ledger, certs, phantom, prior, reader_study, sweep, attack)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="privsynth",
        description="Federated differentially private synthetic medical images.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(commands)
    evaluate = commands.add_parser(
        "evaluate", help="judge a run's synthetic images against its real holdout"
    )
    add_evaluate_arguments(evaluate)
    evaluate.set_defaults(handler=run_evaluate)
    return parser


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # `kill` stops a command as Ctrl-C does: what it started (a SuperLink, Ray) stops with
    # it, and a run can be resumed.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        return args.handler(args)
    except UserError as error:
        print(f"privsynth: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("privsynth: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader stopped early (e.g. `| head`): not an error.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
