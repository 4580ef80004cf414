"""`verify failover`: scenarios, fault injectors, traffic, timelines and alerts."""
