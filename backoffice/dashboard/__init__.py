"""The finance and operator dashboard (issue 12): the overview (the admin's home), the
gateways page with the runbook's switches, the sidebar, and the hourly rollup the overview
reads. A Django app of its own (label `dashboard`) for the rollup's tables."""
