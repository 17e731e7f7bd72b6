"""respond: incident response for package releases that leak what they should not."""

__version__ = "0.1.0"
