"""gnnsys.ops."""
