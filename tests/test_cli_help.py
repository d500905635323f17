"""Every `realfake` subcommand and option explains itself in --help and shows its default (issue 25)."""

from __future__ import annotations

import argparse
import subprocess
import sys

from realfake.cli import build_parser


def subcommands() -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def test_every_subcommand_and_option_has_help_showing_its_default():
    missing = []
    for name, parser in subcommands().items():
        if not parser.description:
            missing.append((name, "description"))
        formatter = parser._get_formatter()
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            label = action.option_strings[0] if action.option_strings else action.dest
            if not action.help:
                missing.append((name, label, "help"))
                continue
            text = formatter._expand_help(action)
            if action.option_strings and action.nargs != 0 and not action.required and "default" not in text:
                missing.append((name, label, "default"))
            if action.default is not None and action.default is not False and action.option_strings and str(
                    action.default if not isinstance(action.default, list) else action.default[0]) not in text:
                missing.append((name, label, f"default value {action.default!r} not shown"))
    assert not missing, missing


def test_help_shows_defaults_on_the_command_line():
    proc = subprocess.run([sys.executable, "-m", "realfake.cli", "predict", "--help"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    text = " ".join(proc.stdout.split())
    assert "score every face in photos" in text  # the description
    assert "(default: models/detector.pt)" in text and "(default: 2)" in text and "(default: auto)" in text
    assert "(default: None)" not in text
