"""gnnsys.unified_tensor."""
