"""The ``vstream`` command line. The only package that imports click."""

from __future__ import annotations

import click

from .. import __version__
from .common import hide_credentials_from_process_list


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vstream")
def main() -> None:
    """Remove reflections, shadows, water stains and smudges from video.

    \b
    Start with:  vstream clean INPUT.mp4          (writes INPUT.clean.mp4)
    More:        vstream clean --help
    """
    hide_credentials_from_process_list()


def _register() -> None:
    from .bench import bench_command
    from .clean import clean_command
    from .evaluate import eval_command
    from .train import export_command, synth_command, train_command

    for command in (clean_command, bench_command, eval_command, train_command, export_command, synth_command):
        main.add_command(command)


_register()
