"""FlowPay's benchmark suite (`make bench`, `make bench-smoke`): see bench/README.md.

Every row measures a candidate (FlowPay's real code path, served or run as in production)
against a baseline measured in the same run, interleaved round by round, and reports
medians, min–max and their ratio. Numbers are reported, never asserted."""
