"""`python -m oxy` is the `oxy` command."""

from oxy.cli import main

main()
