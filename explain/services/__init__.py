"""Writes of the model side. `jobs` creates and queues explanation jobs (torch-free: the web process
uses it); `runs` runs them on a worker and `faithfulness` scores stored maps (both load torch)."""
