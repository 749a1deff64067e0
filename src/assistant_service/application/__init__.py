"""The application layer: the facade and the run loop, built on the domain and the ports."""
