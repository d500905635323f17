"""Stage evaluate: metrics, breakdowns, robustness, shortcut baselines, report; exp-table."""
