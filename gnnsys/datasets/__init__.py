"""gnnsys.datasets."""
