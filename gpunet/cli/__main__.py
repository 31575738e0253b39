"""``python -m gpunet.cli ...``: the same as the ``gpunet`` console script."""

from gpunet.cli import main

if __name__ == "__main__":
    main()
