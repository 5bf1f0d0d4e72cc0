import sys

from dispatch.cli import main

if __name__ == "__main__":  # a render pool's worker re-imports __main__ without running it
    sys.exit(main())
