"""IO adapters: the clock, the HTTP dispatcher, the stores."""
