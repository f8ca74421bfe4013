"""The Manager's REST API, its JSON bodies, the session archive routes and the dashboard."""
