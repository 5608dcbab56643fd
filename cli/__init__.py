"""simulsa.cli: the `simulsa` command line (typer)."""
