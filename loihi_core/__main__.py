"""``python -m loihi_core`` is the ``loihi-studio`` command."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
