"""evalbot: flagged AI failures become a git-tracked eval corpus."""
