"""What every worker and host shares: counted slots in the cache, where a cache call may run."""
