"""Submissions: validation, scoring, the results file, and the leaderboard page."""
