"""`python -m nodegen` entry point."""

from nodegen.cli import main

main()
