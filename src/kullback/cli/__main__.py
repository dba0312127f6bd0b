"""``python -m kullback.cli``: the ``kullback`` program."""

from ._app import main

if __name__ == "__main__":
    main()
