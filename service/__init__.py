"""crr-gateway: restart containers in place through OpenKruise ContainerRecreateRequests."""
