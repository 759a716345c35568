"""Face analysis, generation, morphable model and metrics. Never imports Qt."""
