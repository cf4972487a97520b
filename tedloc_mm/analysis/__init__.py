"""Analysis back-ends of tools/analysis_tools: cost (parameters, FLOPs, latency) and the
plots of the WSOL curves (:mod:`.wsol_curves`; matplotlib imported on first plot)."""
