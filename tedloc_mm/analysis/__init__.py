"""Analysis back-ends of tools/analysis_tools: cost (parameters, FLOPs, latency)."""
