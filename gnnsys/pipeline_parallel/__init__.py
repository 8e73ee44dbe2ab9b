"""gnnsys.pipeline_parallel."""
