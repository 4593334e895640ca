"""``python -m device_app`` starts the app (same as ``ciba-device``)."""

import sys

from device_app.main import main

sys.exit(main())
