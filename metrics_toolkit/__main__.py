"""``python -m metrics_toolkit`` runs the command line."""

from metrics_toolkit.cli import main

main(prog_name="metrics-toolkit")
