"""Server-rendered web pages for every role (Vietnamese first), built on the data layers."""
