"""The built-in procedures, registered on import (one module per family)."""
from tfprune.experiment.procedures import dense, lottery, obd, scorers, tfmot_gradual  # noqa: F401  (registration)
