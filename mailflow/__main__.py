"""`python -m mailflow`: the command line."""

from mailflow.cli import main

if __name__ == "__main__":
    main()
