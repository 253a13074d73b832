import sys

from aperture_assets.cli.main import main

sys.exit(main())
