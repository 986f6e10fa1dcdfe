"""Flood control: repeated records from one source written up to a limit, then summarised."""
