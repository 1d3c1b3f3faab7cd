from para_training.policies.coord_regression.configuration_coord_regression import (
    CoordRegressionConfig,
)
from para_training.policies.coord_regression.modeling_coord_regression import CoordRegression

__all__ = ["CoordRegression", "CoordRegressionConfig"]
