"""`verify load`: the load driver, workloads, figures, SLOs and reports."""
