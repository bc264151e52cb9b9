"""The matcher: pair state and the suggestion decision (pure), behind thin faust agents."""
