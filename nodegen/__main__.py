"""The `nodegen` process: `python -m nodegen` and the installed command (pyproject's console script)."""

from nodegen import collector


def main() -> None:
    """One CLI run in a process of its own, with the garbage collector scheduled for it (nodegen.collector)."""
    collector.pause()  # before the imports: their objects live as long as the process
    from nodegen.cli import main as run

    try:
        run()
    finally:
        collector.finish()


if __name__ == "__main__":
    main()
