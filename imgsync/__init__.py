"""imgsync: put the images of markdown notes on a 123pan image bed and rewrite the links."""

__version__ = "0.1.0"
