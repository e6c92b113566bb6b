"""``python -m gantool`` (also what ``torchrun -m gantool train ...`` runs)."""

from gantool.cli.app import main

if __name__ == "__main__":
    main()
